//! `lstm-wgpu forward --weights model.onnx`: the binary on the ONNX fixtures
//! (tests/fixtures/onnx), its `.npy` outputs against ONNX Runtime's, and its errors.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::assert_close;
use lstm_wgpu::interop::npy;

fn case_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(case)
}

fn out_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lstm-wgpu-onnx-cli-{tag}-{}", std::process::id()))
}

/// `lstm-wgpu forward --weights <case>/model.onnx --out OUT` plus `args`.
fn forward(case: &str, out: &PathBuf, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .arg("forward")
        .arg("--weights")
        .arg(case_dir(case).join("model.onnx"))
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn input(case: &str, name: &str) -> String {
    case_dir(case)
        .join("inputs")
        .join(format!("{name}.npy"))
        .display()
        .to_string()
}

/// Every file in `<case>/expected/` against the same name in `out`.
fn compare_outputs(case: &str, out: &Path, atol: f32) {
    let expected = std::fs::read_dir(case_dir(case).join("expected")).unwrap();
    let mut count = 0;
    for entry in expected {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let produced = out.join(name);
        if dtype(&path) != "<f4" {
            // Integer outputs: the same values and the dtype ONNX Runtime gave (int32 stays int32).
            assert_eq!(dtype(&produced), dtype(&path), "{case}: {name:?} dtype");
            assert_eq!(
                npy::read_i64(&produced).unwrap(),
                npy::read_i64(&path).unwrap(),
                "{case}: {name:?}"
            );
            count += 1;
            continue;
        }
        let want = npy::read_f32(&path).unwrap();
        let got =
            npy::read_f32(&out.join(name)).unwrap_or_else(|e| panic!("{case}: {name:?}: {e}"));
        assert_close(&format!("{case}/{name:?}"), &got, &want, atol, 0.0);
        count += 1;
    }
    assert!(count >= 2, "{case}: {count} expected outputs");
}

/// The `descr` of a `.npy` file's header (`<f4`, `<i4`, `<i8`).
fn dtype(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(128)]).into_owned();
    let start = header.find("'descr': '").expect("npy header") + 10;
    header[start..].split('\'').next().unwrap().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn forward_runs_a_model_with_one_input() {
    let case = "torch_lstm_bidir_stack";
    let out = out_dir("one");
    let res = forward(
        case,
        &out,
        &[
            "--input".into(),
            input(case, "x"),
            "--device".into(),
            "cpu".into(),
        ],
    );
    assert!(res.status.success(), "{}", stderr(&res));
    compare_outputs(case, &out, 1e-5);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn forward_binds_several_inputs_by_name() {
    let case = "lstm_reverse_peephole_lens";
    let out = out_dir("named");
    let mut args: Vec<String> = Vec::new();
    for name in ["x", "seq_lens", "h0", "c0"] {
        args.extend(["--input".into(), format!("{name}={}", input(case, name))]);
    }
    args.extend(["--device".into(), "cpu".into()]);
    let res = forward(case, &out, &args);
    assert!(res.status.success(), "{}", stderr(&res));
    compare_outputs(case, &out, 1e-5);

    // One binding left out: the error names it and the exit code is 1.
    let res = forward(case, &out, &args[2..]);
    assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
    assert!(
        stderr(&res).contains("graph input 'x': not bound"),
        "{}",
        stderr(&res)
    );
    // A bare file is ambiguous with four inputs.
    let res = forward(case, &out, &["--input".into(), input(case, "x")]);
    assert!(stderr(&res).contains("name each"), "{}", stderr(&res));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn forward_refuses_weight_file_flags_for_a_model() {
    let case = "torch_lstm_2layer";
    let out = out_dir("flags");
    let res = forward(
        case,
        &out,
        &["--input".into(), input(case, "x"), "--batch-first".into()],
    );
    assert_eq!(res.status.code(), Some(1));
    assert!(
        stderr(&res).contains("--batch-first does not apply to a .onnx model"),
        "{}",
        stderr(&res)
    );
}

#[test]
fn forward_writes_integer_outputs_with_their_type() {
    let case = "glue_ops_opset17";
    let out = out_dir("glue");
    let res = forward(
        case,
        &out,
        &[
            "--input".into(),
            input(case, "x"),
            "--device".into(),
            "cpu".into(),
        ],
    );
    assert!(res.status.success(), "{}", stderr(&res));
    compare_outputs(case, &out, 1e-6);
    assert_eq!(dtype(&out.join("x_int32.npy")), "<i4");
    std::fs::remove_dir_all(&out).ok();
}

/// Without --device: the GPU when there is one (this GRU, linear_before_reset = 1, on GpuGru).
#[test]
fn forward_on_the_default_device() {
    let case = "torch_gru_2layer";
    let out = out_dir("gpu");
    let res = forward(case, &out, &["--input".into(), input(case, "x")]);
    assert!(res.status.success(), "{}", stderr(&res));
    compare_outputs(case, &out, 1e-4);
    std::fs::remove_dir_all(&out).ok();
}

//! The importers and the `forward` command against outputs of PyTorch, Keras and ONNX
//! Runtime themselves (`scripts/make_interop_fixtures.py`, files in tests/fixtures/interop).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lstm_wgpu::interop::format::{self, Format};
use lstm_wgpu::interop::{keras, npy, onnx, torch};
use lstm_wgpu::{cpu, ForwardOptions, GpuLstm, LstmOutput, LstmState, LstmWeights, Peephole};
use ndarray::{Array3, Axis, Ix3};

/// One fixture directory and what the framework was built with.
struct Case {
    name: &'static str,
    format: Format,
    /// Name prefix of the LSTM's tensors in the weight file.
    prefix: &'static str,
    /// `x` and `y` are `[B, T, ·]` (Keras always; one PyTorch case).
    batch_first: bool,
    layers: usize,
    bidirectional: bool,
    peephole: Peephole,
}

const fn case(
    name: &'static str,
    format: Format,
    prefix: &'static str,
    batch_first: bool,
    layers: usize,
    bidirectional: bool,
    peephole: Peephole,
) -> Case {
    Case {
        name,
        format,
        prefix,
        batch_first,
        layers,
        bidirectional,
        peephole,
    }
}

const CASES: [Case; 8] = [
    case(
        "torch_one_layer_init",
        Format::Torch,
        "",
        false,
        1,
        false,
        Peephole::None,
    ),
    case(
        "torch_two_layer_bidir",
        Format::Torch,
        "lstm.",
        true,
        2,
        true,
        Peephole::None,
    ),
    case(
        "torch_var_lengths",
        Format::Torch,
        "",
        false,
        2,
        true,
        Peephole::None,
    ),
    case(
        "keras_seq_state",
        Format::Keras,
        "",
        true,
        1,
        false,
        Peephole::None,
    ),
    case(
        "keras_bidir",
        Format::Keras,
        "bi_lstm.",
        true,
        1,
        true,
        Peephole::None,
    ),
    case(
        "onnx_peephole_lens",
        Format::Onnx,
        "",
        false,
        1,
        false,
        Peephole::Diagonal,
    ),
    case(
        "onnx_bidir_peephole_lens",
        Format::Onnx,
        "",
        false,
        1,
        true,
        Peephole::Diagonal,
    ),
    case(
        "onnx_bidir_no_bias",
        Format::Onnx,
        "",
        false,
        1,
        true,
        Peephole::None,
    ),
];

fn dir(case: &Case) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interop")
        .join(case.name)
}

/// `weights.safetensors` when the case has one, else the `weights/` directory of .npy files.
fn weights_path(case: &Case) -> PathBuf {
    let st = dir(case).join("weights.safetensors");
    if st.exists() {
        st
    } else {
        dir(case).join("weights")
    }
}

fn file(case: &Case, name: &str) -> Option<PathBuf> {
    Some(dir(case).join(format!("{name}.npy"))).filter(|p| p.exists())
}

fn arr3(path: &Path) -> Array3<f32> {
    let a = npy::read_f32(path).unwrap();
    // Keras's initial states are [B, H]: one layer-direction.
    let a = if a.ndim() == 2 {
        a.insert_axis(Axis(0))
    } else {
        a
    };
    a.into_dimensionality::<Ix3>().unwrap()
}

/// Loads through the format's own importer, and checks auto-detection agrees.
fn import(case: &Case) -> LstmWeights {
    let path = weights_path(case);
    let mut w = match case.format {
        Format::Torch => torch::from_tensors(&format::read_tensors(&path).unwrap(), case.prefix),
        Format::Keras => keras::load(&path, case.prefix),
        Format::Onnx => onnx::load(&path, case.prefix),
    }
    .unwrap();
    let (detected, auto) = format::load(&path, None, None).unwrap();
    assert_eq!(
        (detected, &auto),
        (case.format, &w),
        "{}: detection",
        case.name
    );
    let c = &w.config;
    assert_eq!(
        (c.num_layers, c.bidirectional, c.peephole),
        (case.layers, case.bidirectional, case.peephole),
        "{}: inferred config",
        case.name
    );
    w.config.batch_first = case.batch_first;
    w
}

struct Expected {
    x: Array3<f32>,
    initial: Option<LstmState>,
    lens: Option<Vec<usize>>,
    out: LstmOutput,
}

fn expected(case: &Case) -> Expected {
    let f = |n: &str| arr3(&file(case, n).unwrap());
    Expected {
        x: f("x"),
        initial: file(case, "h0").map(|h| LstmState {
            h: arr3(&h),
            c: f("c0"),
        }),
        lens: file(case, "seq_lens").map(|p| npy::read_lengths(&p).unwrap()),
        out: LstmOutput {
            y: f("y"),
            h_n: f("h_n"),
            c_n: f("c_n"),
        },
    }
}

/// Compares all three outputs; returns the largest absolute error.
fn check(what: &str, got: &LstmOutput, want: &LstmOutput, atol: f32, rtol: f32) -> f32 {
    assert_close(&format!("{what} y"), &got.y, &want.y, atol, rtol);
    assert_close(&format!("{what} h_n"), &got.h_n, &want.h_n, atol, rtol);
    assert_close(&format!("{what} c_n"), &got.c_n, &want.c_n, atol, rtol);
    [
        max_diff(&got.y, &want.y),
        max_diff(&got.h_n, &want.h_n),
        max_diff(&got.c_n, &want.c_n),
    ]
    .into_iter()
    .fold(0.0, f32::max)
}

#[test]
fn importers_match_each_framework_on_cpu_and_gpu() {
    let ctx = shared_context();
    for case in &CASES {
        let w = import(case);
        let e = expected(case);
        // Outputs past a sequence's length are zero: a real check needs non-zero ones.
        assert!(e.out.y.iter().any(|&v| v.abs() > 0.1), "{}", case.name);
        let opts = ForwardOptions {
            initial: e.initial.as_ref(),
            seq_lens: e.lens.as_deref(),
        };
        let out = cpu::forward(&w, e.x.view(), opts).unwrap();
        let cpu_err = check(
            &format!("{} cpu", case.name),
            &out,
            &e.out,
            TORCH_ATOL,
            TORCH_RTOL,
        );
        let gpu_err = ctx.as_ref().map(|ctx| {
            let out = GpuLstm::new(ctx.clone(), &w)
                .unwrap()
                .forward(e.x.view(), opts)
                .unwrap();
            check(
                &format!("{} gpu", case.name),
                &out,
                &e.out,
                GPU_ATOL,
                GPU_RTOL,
            )
        });
        eprintln!(
            "{}: max |crate - framework| cpu {cpu_err:.2e}, gpu {}",
            case.name,
            gpu_err.map_or("skipped".into(), |e| format!("{e:.2e}"))
        );
    }
}

/// Runs `lstm-wgpu forward` on a case; returns its outputs.
fn run_forward(case: &Case, extra: &[&str]) -> LstmOutput {
    let out = std::env::temp_dir().join(format!(
        "lstm-wgpu-interop-{}-{}-{}",
        case.name,
        extra.join(""),
        std::process::id()
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"));
    cmd.arg("forward")
        .arg("--weights")
        .arg(weights_path(case))
        .arg("--input")
        .arg(file(case, "x").unwrap())
        .arg("--out")
        .arg(&out)
        .args(extra);
    if let (Some(h), Some(c)) = (file(case, "h0"), file(case, "c0")) {
        cmd.arg("--h0").arg(h).arg("--c0").arg(c);
    }
    if let Some(l) = file(case, "seq_lens") {
        cmd.arg("--seq-lens").arg(l);
    }
    if case.batch_first {
        cmd.arg("--batch-first");
    }
    let res = cmd.output().unwrap();
    assert!(
        res.status.success(),
        "{}: forward failed:\n{}",
        case.name,
        String::from_utf8_lossy(&res.stderr)
    );
    let got = LstmOutput {
        y: arr3(&out.join("y.npy")),
        h_n: arr3(&out.join("h_n.npy")),
        c_n: arr3(&out.join("c_n.npy")),
    };
    std::fs::remove_dir_all(&out).ok();
    got
}

#[test]
fn forward_command_matches_each_framework() {
    let gpu = shared_context().is_some();
    for case in &CASES {
        let want = expected(case).out;
        let fmt = case.format.to_string();
        // The format is given for some cases and detected for the others.
        let mut cpu_args = vec!["--device", "cpu"];
        if case.name.contains("bidir") {
            cpu_args.extend(["--format", &fmt]);
        }
        let err = check(
            &format!("{} forward --device cpu", case.name),
            &run_forward(case, &cpu_args),
            &want,
            TORCH_ATOL,
            TORCH_RTOL,
        );
        eprintln!("{}: forward --device cpu: max err {err:.2e}", case.name);
        // lavapipe makes a device per process (slow): the GPU runs one case per framework.
        if gpu
            && [
                "torch_var_lengths",
                "keras_bidir",
                "onnx_bidir_peephole_lens",
            ]
            .contains(&case.name)
        {
            let err = check(
                &format!("{} forward --device gpu", case.name),
                &run_forward(case, &["--device", "gpu"]),
                &want,
                GPU_ATOL,
                GPU_RTOL,
            );
            eprintln!("{}: forward --device gpu: max err {err:.2e}", case.name);
        }
    }
}

/// Keras and ONNX weights saved as a PyTorch state dict load back unchanged and
/// still reproduce the framework's outputs. (The script checks the same files in
/// `torch.nn.LSTM.load_state_dict` itself.)
#[test]
fn export_to_pytorch_names_round_trips() {
    for name in ["keras_bidir", "onnx_bidir_no_bias", "onnx_peephole_lens"] {
        let case = CASES.iter().find(|c| c.name == name).unwrap();
        let w = import(case);
        let path = std::env::temp_dir().join(format!(
            "lstm-wgpu-export-{name}-{}.safetensors",
            std::process::id()
        ));
        torch::save_safetensors(&w, &path).unwrap();
        let mut back = torch::load_safetensors(&path, "").unwrap();
        std::fs::remove_file(&path).ok();
        back.config.batch_first = case.batch_first;
        assert_eq!(back, w, "{name}");
        let e = expected(case);
        let opts = ForwardOptions {
            initial: e.initial.as_ref(),
            seq_lens: e.lens.as_deref(),
        };
        let out = cpu::forward(&back, e.x.view(), opts).unwrap();
        check(name, &out, &e.out, TORCH_ATOL, TORCH_RTOL);
    }
}

/// Without `--device`, a machine with no (matching) adapter runs on the CPU and says
/// so; with `--device gpu` it is an error instead.
#[test]
fn forward_command_falls_back_to_cpu_without_an_adapter() {
    let case = &CASES[0];
    let out = std::env::temp_dir().join(format!("lstm-wgpu-fallback-{}", std::process::id()));
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .env("WGPU_ADAPTER_NAME", "no-such-adapter-anywhere")
            .arg("forward")
            .arg("--weights")
            .arg(weights_path(case))
            .arg("--input")
            .arg(file(case, "x").unwrap())
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let res = run(&[]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("running on the CPU instead"), "{stderr}");
    assert!(out.join("y.npy").exists());
    std::fs::remove_dir_all(&out).ok();
    let res = run(&["--device", "gpu"]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success() && stderr.contains("no GPU adapter"),
        "{stderr}"
    );
    assert!(!out.exists(), "no outputs are written on error");
}

//! Bad `forward` arguments and input files give clear errors from the binary, never
//! a panic, and write no outputs. Runs the binary, so it needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;
mod interop_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use interop_common::*;
use lstm_wgpu::interop::npy;

/// Runs the binary; returns (success, stderr).
fn lstm_wgpu(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interop")
        .join(name)
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Bad inputs for the `onnx_peephole_lens` fixture, written to `d`: each case's extra
/// arguments and what its message must say.
fn bad_input_cases(d: &Path) -> Vec<(Vec<String>, &'static str)> {
    let fx = fixture("onnx_peephole_lens");
    let x = s(&fx.join("x.npy"));
    let mut nan_h0 = npy::read_f32(&fx.join("h0.npy")).unwrap();
    nan_h0[[0, 1, 2]] = f32::NAN;
    let nan_h0_path = d.join("nan_h0.npy");
    npy::write(&nan_h0_path, &nan_h0).unwrap();
    let flat_x = d.join("flat_x.npy");
    npy::write(&flat_x, &tensor(&[6, 4], 1)).unwrap();
    let lens4 = d.join("lens4.npy");
    npy::write(&lens4, &ndarray::arr1(&[1i32, 2, 3, 4])).unwrap();
    let lens_big = d.join("lens_big.npy");
    npy::write(&lens_big, &ndarray::arr1(&[1i64, 7, 3])).unwrap();
    let h0 = s(&fx.join("h0.npy"));
    let c0 = s(&fx.join("c0.npy"));
    let with_x = |rest: &[&str]| -> Vec<String> {
        ["--input", x.as_str()]
            .iter()
            .chain(rest)
            .map(|a| a.to_string())
            .collect()
    };
    vec![
        (vec!["--input".into(), s(&d.join("nope.npy"))], "nope.npy"),
        (
            vec!["--input".into(), s(&flat_x)],
            "[T, B, I] or [B, T, I], got [6, 4]",
        ),
        (with_x(&["--h0", &s(&nan_h0_path), "--c0", &c0]), "NaN"),
        (
            with_x(&["--seq-lens", &s(&lens4)]),
            "lens4.npy: expected [3] (one length per sequence of the input), got [4]",
        ),
        (with_x(&["--seq-lens", &s(&lens_big)]), "7 is outside 1..=6"),
        (with_x(&["--h0", &x, "--c0", &c0]), "initial state h_0"),
        (with_x(&["--h0", &h0]), "--c0"),
        (
            with_x(&["--format", "tf"]),
            "possible values: torch, keras, onnx",
        ),
        (with_x(&["--format", "keras"]), "tensor recurrent_kernel"),
    ]
}

#[test]
fn forward_command_rejects_bad_inputs() {
    let d = scratch("bad-forward");
    let weights = s(&fixture("onnx_peephole_lens").join("weights"));
    let out = s(&d.join("out"));
    let base = [
        "forward",
        "--device",
        "cpu",
        "--weights",
        &weights,
        "--out",
        &out,
    ];
    for (extra, needle) in bad_input_cases(&d) {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter().map(String::as_str));
        let (ok, stderr) = lstm_wgpu(&args);
        assert!(!ok && stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
    }
    assert!(!d.join("out").exists(), "no outputs are written on error");
    std::fs::remove_dir_all(&d).ok();
}

/// A Keras [B, H] state is only accepted for one unidirectional layer.
#[test]
fn forward_command_rejects_a_keras_state_for_a_bidirectional_lstm() {
    let d = scratch("bad-forward-bidir");
    let out = s(&d.join("out"));
    let bi = fixture("onnx_bidir_peephole_lens");
    let bh = d.join("bh.npy");
    npy::write(&bh, &tensor(&[3, 4], 2)).unwrap();
    let (ok, stderr) = lstm_wgpu(&[
        "forward",
        "--device",
        "cpu",
        "--weights",
        &s(&bi.join("weights")),
        "--input",
        &s(&bi.join("x.npy")),
        "--h0",
        &s(&bh),
        "--c0",
        &s(&bh),
        "--out",
        &out,
    ]);
    assert!(
        !ok && stderr.contains("expected [L·D, B, H], got [3, 4]"),
        "{stderr}"
    );
    assert!(!d.join("out").exists(), "no outputs are written on error");
    std::fs::remove_dir_all(&d).ok();
}

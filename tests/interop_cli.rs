//! The `forward` command against outputs of PyTorch, Keras and ONNX Runtime
//! (the fixtures of tests/interop.rs), and its CPU fallback. Runs the binary, so
//! it needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;
mod interop_common;

use std::process::Command;

use common::*;
use interop_common::*;
use lstm_wgpu::LstmOutput;

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

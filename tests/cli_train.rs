//! The main job end to end on a few hundred bundled digits: epochs print, the
//! checkpoint loads back, the plot is a PNG, and GPU vs CPU logits are compared.

mod common;

use std::path::PathBuf;
use std::process::Command;

use lstm_wgpu::train::load_checkpoint;
use lstm_wgpu::LstmConfig;

fn run_train(device: &str, out: &PathBuf) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args([
            "train",
            "--device",
            device,
            "--epochs",
            "2",
            "--hidden",
            "12",
            "--batch",
            "64",
            "--train-size",
            "512",
        ])
        .arg("--out")
        .arg(out)
        .output()
        .expect("binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "train --device {device} failed:\n{text}"
    );
    text
}

fn check_outputs(text: &str, out: &std::path::Path) {
    assert!(
        text.contains("epoch  1:") && text.contains("epoch  2:"),
        "{text}"
    );
    let params = load_checkpoint(
        &out.join("mnist_lstm.safetensors"),
        Some((&LstmConfig::new(28, 12).batch_first(true), 10)),
    )
    .unwrap();
    assert_eq!(params.dense.weight.dim(), (10, 12));
    let png = std::fs::read(out.join("training.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn trains_on_the_cpu_path() {
    let out = std::env::temp_dir().join(format!("lstm-wgpu-train-cpu-{}", std::process::id()));
    let text = run_train("cpu", &out);
    check_outputs(&text, &out);
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn trains_on_the_gpu_path() {
    if common::shared_context().is_none() {
        return;
    }
    let out = std::env::temp_dir().join(format!("lstm-wgpu-train-gpu-{}", std::process::id()));
    let text = run_train("gpu", &out);
    check_outputs(&text, &out);
    assert!(text.contains("GPU vs CPU on one test batch"), "{text}");
    std::fs::remove_dir_all(out).ok();
}

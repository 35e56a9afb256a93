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

fn train_command(out: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"));
    c.args([
        "train", "--device", "cpu", "--hidden", "24", "--batch", "64",
    ])
    .args(["--train-size", "2000", "--epochs", "8"])
    .args(extra)
    .arg("--out")
    .arg(out);
    c
}

/// A run killed at a random point after its first epoch and resumed with
/// `train --resume` ends with the weights of a run that was never stopped.
#[cfg(unix)]
#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    use std::os::unix::process::ExitStatusExt;
    let base = std::env::temp_dir().join(format!("lstm-wgpu-resume-{}", std::process::id()));
    let (whole, cut) = (base.join("whole"), base.join("cut"));
    let o = train_command(&whole, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut child = train_command(&cut, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = cut.join("train_state.safetensors");
    let t0 = std::time::Instant::now();
    while !state.exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the run ended before it could be killed"
    );

    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["train", "--resume"])
        .arg(&cut)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("resuming from"), "{text}");
    assert!(text.contains("epoch  8:"), "{text}");
    let cfg = LstmConfig::new(28, 24).batch_first(true);
    let load = |dir: &std::path::Path| {
        load_checkpoint(&dir.join("mnist_lstm.safetensors"), Some((&cfg, 10))).unwrap()
    };
    assert!(
        load(&whole) == load(&cut),
        "resumed weights differ from the whole run's"
    );
    std::fs::remove_dir_all(base).ok();
}

#[test]
fn resume_from_a_folder_without_a_state_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-no-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["train", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("train_state.safetensors"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

/// Found in review: a negative setting (stored as two tokens) broke `--resume`, and a
/// run of zero epochs said it wrote a checkpoint it never wrote.
#[test]
fn negative_settings_resume_and_zero_epochs_still_write() {
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-negative-{}", std::process::id()));
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args([
                "train",
                "--device",
                "cpu",
                "--hidden",
                "8",
                "--train-size",
                "300",
            ])
            .args(args)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        text
    };
    run(&["--epochs", "0", "--forget-bias=-1", "--weight-decay=-0.0"]);
    let cfg = LstmConfig::new(28, 8).batch_first(true);
    load_checkpoint(&dir.join("mnist_lstm.safetensors"), Some((&cfg, 10))).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["train", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("forget bias -1"), "{text}");
    std::fs::remove_dir_all(dir).ok();
}

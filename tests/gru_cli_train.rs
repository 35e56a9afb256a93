//! `lstm-wgpu train --cell gru`: the GRU classifier trained from the command line on
//! each device — its model (`gru.*`, `fc.*`), its training state and `--resume` — and
//! what a GRU run still refuses. Runs the binary, so it needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::shared_context;
use lstm_wgpu::interop::{tensors::TensorMap, torch_gru};

/// `train --cell gru` on a few hundred digits: the loss falls, the checkpoint holds an
/// `nn.GRU` under `gru.` and a Dense head under `fc.`, and the plot is a PNG.
#[test]
fn train_cell_gru_learns_and_writes_its_model() {
    let out = std::env::temp_dir().join(format!("lstm-wgpu-train-gru-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args([
            "train",
            "--cell",
            "gru",
            "--epochs",
            "3",
            "--hidden",
            "16",
            "--batch",
            "64",
            "--train-size",
            "512",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let losses: Vec<f32> = text
        .lines()
        .filter(|l| l.starts_with("epoch"))
        .map(|l| {
            l.split("loss ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(losses.len(), 3, "{text}");
    assert!(losses[2] < losses[0], "the loss should fall: {losses:?}");
    let map = TensorMap::read_safetensors(&out.join("mnist_gru.safetensors")).unwrap();
    let gru = torch_gru::gru_from_tensors(&map, "gru.").unwrap();
    assert_eq!((gru.config.input_size, gru.config.hidden_size), (28, 16));
    assert_eq!(map.tensors["fc.weight"].shape(), [10, 16]);
    let png = std::fs::read(out.join("training.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn train_cell_gru_refuses_distributed() {
    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args([
            "train",
            "--cell",
            "gru",
            "--epochs",
            "1",
            "--distributed",
            "--out",
        ])
        .arg(std::env::temp_dir().join("lstm-wgpu-train-gru-refused"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("--distributed"),
        "{stderr}"
    );
}

fn train_gru(out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"));
    c.args(["train", "--cell", "gru"])
        .args(extra)
        .arg("--out")
        .arg(out);
    c
}

fn text_of(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    text
}

/// `train --cell gru --device gpu`, one short epoch (a software adapter is slow): the
/// model trains on the GPU, writes its `gru.*` / `fc.*` checkpoint and its training
/// state, and `--resume` picks that state up on the GPU.
#[test]
fn train_cell_gru_trains_on_the_gpu_and_resumes_there() {
    if shared_context().is_none() {
        return;
    }
    let out = std::env::temp_dir().join(format!("lstm-wgpu-train-gru-gpu-{}", std::process::id()));
    let args = [
        "--device",
        "gpu",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--batch",
        "100",
        "--train-size",
        "400",
        "--validation",
        "100",
    ];
    let text = text_of(&train_gru(&out, &args).output().unwrap());
    assert!(text.contains("device: GPU"), "{text}");
    assert!(text.contains("epoch  1:"), "{text}");
    let map = TensorMap::read_safetensors(&out.join("mnist_gru.safetensors")).unwrap();
    let gru = torch_gru::gru_from_tensors(&map, "gru.").unwrap();
    assert_eq!((gru.config.input_size, gru.config.hidden_size), (28, 16));
    assert_eq!(map.tensors["fc.weight"].shape(), [10, 16]);
    assert!(out.join("train_state.safetensors").exists());
    let o = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["train", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    let text = text_of(&o);
    assert!(text.contains("resuming from"), "{text}");
    assert!(text.contains("device: GPU"), "{text}");
    let again = TensorMap::read_safetensors(&out.join("mnist_gru.safetensors")).unwrap();
    assert_eq!(
        again.tensors, map.tensors,
        "a finished run resumed changed its model"
    );
    std::fs::remove_dir_all(&out).ok();
}

/// A GRU run killed after its first epoch and resumed with `train --resume` ends with
/// the model of a run that was never stopped (CPU path).
#[cfg(unix)]
#[test]
fn a_killed_gru_run_resumes_to_the_same_weights() {
    use std::os::unix::process::ExitStatusExt;
    let base = std::env::temp_dir().join(format!("lstm-wgpu-gru-resume-{}", std::process::id()));
    let (whole, cut) = (base.join("whole"), base.join("cut"));
    let args = [
        "--device",
        "cpu",
        "--epochs",
        "6",
        "--hidden",
        "32",
        "--batch",
        "64",
        "--train-size",
        "3000",
        "--validation",
        "200",
    ];
    text_of(&train_gru(&whole, &args).output().unwrap());
    let mut child = train_gru(&cut, &args)
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
    let text = text_of(&o);
    assert!(text.contains("resuming from"), "{text}");
    assert!(text.contains("epoch  6:"), "{text}");
    let model =
        |dir: &Path| TensorMap::read_safetensors(&dir.join("mnist_gru.safetensors")).unwrap();
    assert!(
        model(&whole).tensors == model(&cut).tensors,
        "resumed GRU weights differ from the whole run's"
    );
    std::fs::remove_dir_all(base).ok();
}

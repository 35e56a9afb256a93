//! `lstm-wgpu forward` and `convert` on a PyTorch `nn.GRU` state dict: the cell told by
//! the tensors, outputs against PyTorch's (no `c_n.npy`), and the errors of a GRU file
//! used as an LSTM. Runs the binary, so it needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use lstm_wgpu::interop::{npy, tensors::TensorMap, torch_gru};
use ndarray::{Array3, Ix3};

fn fixture_path(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/torch_gru/{case}.safetensors"))
}

/// A scratch directory holding the fixture's `x.npy` and `h0.npy`.
fn scratch(case: &str, tag: &str) -> (PathBuf, TensorMap) {
    let dir = std::env::temp_dir().join(format!(
        "lstm-wgpu-gru-cli-{case}-{tag}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let map = TensorMap::read_safetensors(&fixture_path(case)).unwrap();
    for name in ["x", "h0"] {
        let a = map.tensors[name]
            .clone()
            .into_dimensionality::<Ix3>()
            .unwrap();
        npy::write(&dir.join(format!("{name}.npy")), &a).unwrap();
    }
    (dir, map)
}

fn lstm_wgpu(dir: &Path, case: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["forward", "--prefix", ""])
        .arg("--weights")
        .arg(fixture_path(case))
        .arg("--input")
        .arg(dir.join("x.npy"))
        .arg("--h0")
        .arg(dir.join("h0.npy"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap()
}

fn read3(path: &Path) -> Array3<f32> {
    npy::read_f32(path)
        .unwrap()
        .into_dimensionality::<Ix3>()
        .unwrap()
}

#[test]
fn forward_matches_pytorch_on_each_device() {
    let case = "one_layer_init_state";
    let mut devices = vec![("cpu", TORCH_ATOL)];
    if shared_context().is_some() {
        devices.push(("gpu", GPU_ATOL));
    }
    for (device, tol) in devices {
        let (dir, map) = scratch(case, device);
        let res = lstm_wgpu(&dir, case, &["--device", device]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success(), "{device}: {stderr}");
        assert!(stderr.contains("GRU"), "{stderr}");
        for name in ["y", "h_n"] {
            let want = map.tensors[name]
                .clone()
                .into_dimensionality::<Ix3>()
                .unwrap();
            assert_close(
                &format!("{device} {name}"),
                &read3(&dir.join(format!("out/{name}.npy"))),
                &want,
                tol,
                tol,
            );
        }
        assert!(!dir.join("out/c_n.npy").exists(), "a GRU writes no c_n.npy");
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_gru_file_is_not_an_lstm() {
    let case = "single_step";
    let (dir, _) = scratch(case, "errors");
    let cases: [(&[&str], &str); 2] = [
        (&["--cell", "lstm", "--device", "cpu"], "holds a GRU"),
        (&["--c0", "x.npy", "--device", "cpu"], "no cell state"),
    ];
    for (extra, want) in cases {
        let res = lstm_wgpu(&dir, case, extra);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(
            !res.status.success() && stderr.contains(want),
            "{extra:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn convert_round_trips_a_gru() {
    let case = "two_layer_bidir_batch_first";
    let (dir, map) = scratch(case, "convert");
    let out = dir.join("gru.safetensors");
    let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["convert", "--prefix", "", "--weights"])
        .arg(fixture_path(case))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let back =
        torch_gru::gru_from_tensors(&TensorMap::read_safetensors(&out).unwrap(), "").unwrap();
    assert_eq!(back, torch_gru::gru_from_tensors(&map, "").unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

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

/// A `nn.LSTM(proj_size)` state dict runs through `forward` on the CPU path (told by its
/// `weight_hr_l0`), and `--device gpu` says it cannot.
#[test]
fn forward_runs_a_projected_lstm() {
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-lstmp-cli-{}", std::process::id()));
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_lstmp/one_layer_init_state");
    let map = TensorMap::read_safetensors(&fixture.with_extension("safetensors")).unwrap();
    let run = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args(["forward", "--prefix", "", "--device", device, "--weights"])
            .arg(fixture.with_extension("safetensors"))
            .arg("--input")
            .arg(fixture.with_extension("x.npy"))
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap()
    };
    let res = run("cpu");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // Without --h0/--c0 the fixture's y is not comparable (it used initial states); the
    // shapes are PyTorch's: y [T, B, P], h_n [1, B, P], c_n [1, B, H].
    let x = map.tensors["x"].shape().to_vec();
    assert_eq!(read3(&dir.join("y.npy")).shape(), [x[0], x[1], 3]);
    assert_eq!(read3(&dir.join("h_n.npy")).shape(), [1, x[1], 3]);
    assert_eq!(read3(&dir.join("c_n.npy")).shape(), [1, x[1], 7]);
    let res = run("gpu");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success() && stderr.contains("CPU path only"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// One Keras GRU layer's `.npy` folder (here `reset_after=False`, told by its `(3H)`
/// bias) runs through `forward` as loose tensors and matches Keras's own outputs.
#[test]
fn forward_runs_a_keras_gru_layer_folder() {
    let case = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/gru_state");
    let out =
        std::env::temp_dir().join(format!("lstm-wgpu-keras-gru-layer-{}", std::process::id()));
    let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["forward", "--batch-first", "--device", "cpu", "--weights"])
        .arg(case.join("npy/gru_1"))
        .arg("--input")
        .arg(case.join("x.npy"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("GRU"), "{stderr}");
    assert_close(
        "y",
        &read3(&out.join("y.npy")),
        &read3(&case.join("y.npy")),
        TORCH_ATOL,
        TORCH_ATOL,
    );
    let want_h = npy::read_f32(&case.join("h_n.npy"))
        .unwrap()
        .insert_axis(ndarray::Axis(0));
    let got_h = npy::read_f32(&out.join("h_n.npy")).unwrap();
    assert_close("h_n", &got_h, &want_h, TORCH_ATOL, TORCH_ATOL);
    std::fs::remove_dir_all(&out).ok();
}

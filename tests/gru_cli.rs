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

/// A `nn.LSTM(proj_size)` state dict runs through `forward` (told by its `weight_hr_l0`)
/// on the CPU and on the GPU, and matches PyTorch's outputs.
#[test]
fn forward_runs_a_projected_lstm() {
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-lstmp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_lstmp/one_layer_init_state.safetensors");
    let map = TensorMap::read_safetensors(&fixture).unwrap();
    let arr3 = |n: &str| map.tensors[n].clone().into_dimensionality::<Ix3>().unwrap();
    for name in ["x", "h0", "c0"] {
        npy::write(&dir.join(format!("{name}.npy")), &arr3(name)).unwrap();
    }
    let devices = ["cpu", "gpu"];
    let has_gpu = try_context().is_some();
    for device in devices.into_iter().filter(|&d| d == "cpu" || has_gpu) {
        let out = dir.join(device);
        let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args(["forward", "--prefix", "", "--device", device, "--weights"])
            .arg(&fixture)
            .args(["x", "h0", "c0"].iter().flat_map(|n| {
                let flag = if *n == "x" {
                    "--input".to_string()
                } else {
                    format!("--{n}")
                };
                [flag.into(), dir.join(format!("{n}.npy")).into_os_string()]
            }))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success(), "{device}: {stderr}");
        for name in ["y", "h_n", "c_n"] {
            let got = read3(&out.join(format!("{name}.npy")));
            assert_close(
                &format!("{device} {name}"),
                &got,
                &arr3(name),
                GPU_ATOL,
                GPU_RTOL,
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// One Keras GRU layer's `.npy` folder (here `reset_after=False`, told by its `(3H)`
/// bias) runs through `forward` as loose tensors, on each device, and matches Keras's
/// own outputs.
#[test]
fn forward_runs_a_keras_gru_layer_folder() {
    let case = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/gru_state");
    let has_gpu = try_context().is_some();
    for device in ["cpu", "gpu"]
        .into_iter()
        .filter(|&d| d == "cpu" || has_gpu)
    {
        let out = std::env::temp_dir().join(format!(
            "lstm-wgpu-keras-gru-layer-{device}-{}",
            std::process::id()
        ));
        let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args(["forward", "--batch-first", "--device", device, "--weights"])
            .arg(case.join("npy/gru_1"))
            .arg("--input")
            .arg(case.join("x.npy"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success(), "{device}: {stderr}");
        assert!(stderr.contains("GRU"), "{stderr}");
        // The CPU path: Keras's own tolerance; the GPU (reset_after = false, two
        // dispatches a step): the GPU tolerance.
        let (atol, rtol) = match device {
            "cpu" => (TORCH_ATOL, TORCH_ATOL),
            _ => (GPU_ATOL, GPU_RTOL),
        };
        let want_y = read3(&case.join("y.npy"));
        assert_close(
            &format!("{device} y"),
            &read3(&out.join("y.npy")),
            &want_y,
            atol,
            rtol,
        );
        let want_h = npy::read_f32(&case.join("h_n.npy"))
            .unwrap()
            .insert_axis(ndarray::Axis(0));
        let got_h = npy::read_f32(&out.join("h_n.npy")).unwrap();
        assert_close(&format!("{device} h_n"), &got_h, &want_h, atol, rtol);
        std::fs::remove_dir_all(&out).ok();
    }
}

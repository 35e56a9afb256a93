//! Stacked Keras models (`lstm_wgpu::interop::keras_model`) against Keras 3.15's own
//! outputs: the fixtures of `scripts/make_keras_fixtures.py` in tests/fixtures/keras/,
//! from the `.npy` folder (always), from `.keras` and `.weights.h5` (feature `hdf5`),
//! on the CPU and the GPU, and through `lstm-wgpu forward`. Bad models:
//! tests/keras_model_errors.rs.

mod common;
mod keras_common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use keras_common::*;
use lstm_wgpu::interop::keras_model::KerasModel;
use lstm_wgpu::interop::npy;
use lstm_wgpu::GpuContext;
use ndarray::Ix3;

/// Runs `model` on the case's input and compares every output with Keras's.
fn check(
    case: &str,
    states: &[&str],
    model: &KerasModel,
    gpu: Option<&Arc<GpuContext>>,
    atol: f32,
) {
    let dir = case_dir(case);
    let x = read(&dir.join("x.npy"))
        .into_dimensionality::<Ix3>()
        .unwrap();
    let out = model
        .run(x.view(), gpu)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_close(
        &format!("{case} y"),
        &out.y,
        &read(&dir.join("y.npy")),
        atol,
        0.0,
    );
    let names: Vec<&str> = out.states.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, states, "{case}: state outputs");
    for (name, got) in &out.states {
        let want = read(&dir.join(format!("{name}.npy")));
        assert_close(
            &format!("{case} {name}"),
            &got.clone().into_dyn(),
            &want,
            atol,
            0.0,
        );
    }
}

#[test]
fn npy_folder_matches_keras_on_cpu() {
    for (case, states) in CASES {
        let model = KerasModel::load(&case_dir(case).join("npy")).unwrap();
        check(case, states, &model, None, KERAS_CPU_ATOL);
    }
}

#[test]
fn npy_folder_matches_keras_on_gpu() {
    let Some(ctx) = shared_context() else { return };
    for (case, states) in CASES {
        let model = KerasModel::load(&case_dir(case).join("npy")).unwrap();
        check(case, states, &model, Some(&ctx), KERAS_GPU_ATOL);
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn keras_file_matches_keras_on_cpu_and_gpu() {
    let ctx = shared_context();
    for (case, states) in CASES {
        let model = KerasModel::load(&case_dir(case).join("model.keras")).unwrap();
        check(case, states, &model, None, KERAS_CPU_ATOL);
        if let Some(ctx) = &ctx {
            check(case, states, &model, Some(ctx), KERAS_GPU_ATOL);
        }
    }
}

/// The `.weights.h5` form takes its layer list from the `config.json` beside it.
#[cfg(feature = "hdf5")]
#[test]
fn weights_h5_with_sibling_config_matches_keras() {
    let model = KerasModel::load(&case_dir("lstm_dense").join("model.weights.h5")).unwrap();
    check("lstm_dense", &[], &model, None, KERAS_CPU_ATOL);
}

#[cfg(feature = "hdf5")]
#[test]
fn weights_h5_without_config_says_where_the_layers_come_from() {
    let dir = scratch("no-config");
    let h5 = dir.join("model.weights.h5");
    std::fs::copy(case_dir("lstm_dense").join("model.weights.h5"), &h5).unwrap();
    let msg = KerasModel::load(&h5).unwrap_err().to_string();
    assert!(
        msg.contains("config.json") && msg.contains(".keras"),
        "{msg}"
    );
}

#[cfg(not(feature = "hdf5"))]
#[test]
fn keras_file_without_the_hdf5_feature_says_how_to_get_it() {
    let msg = KerasModel::load(&case_dir("lstm_dense").join("model.keras"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("--features hdf5") && msg.contains(".npy"),
        "{msg}"
    );
}

#[cfg(feature = "cli")]
/// A model folder may hold folders that are not layers (a notebook's checkpoints, an
/// empty folder): they are skipped, and the model runs as before.
#[test]
fn folders_that_are_not_layers_are_skipped() {
    let src = case_dir("lstm_dense").join("npy");
    let dir = scratch("extra-folders");
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let to = dir.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(entry.path()).unwrap().flatten() {
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
    std::fs::create_dir_all(dir.join(".ipynb_checkpoints")).unwrap();
    std::fs::write(dir.join(".ipynb_checkpoints/model-checkpoint.json"), "{}").unwrap();
    std::fs::create_dir_all(dir.join("notes")).unwrap();
    let x = read(&case_dir("lstm_dense").join("x.npy"))
        .into_dimensionality::<Ix3>()
        .unwrap();
    let want = KerasModel::load(&src).unwrap().run(x.view(), None).unwrap();
    let got = KerasModel::load(&dir).unwrap().run(x.view(), None).unwrap();
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).ok();
}

mod cli {
    use super::*;
    use std::process::Command;

    /// `lstm-wgpu forward` on a case's model; returns the output directory.
    fn forward(case: &str, weights: &Path, x: &Path, extra: &[&str]) -> PathBuf {
        let out = scratch(&format!("cli-{case}"));
        let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args(["forward", "--device", "cpu", "--weights"])
            .arg(weights)
            .arg("--input")
            .arg(x)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success(), "{case}: forward failed:\n{stderr}");
        out
    }

    #[test]
    fn forward_command_writes_keras_outputs() {
        for (case, states) in CASES {
            let dir = case_dir(case);
            let out = forward(
                case,
                &dir.join("npy"),
                &dir.join("x.npy"),
                &["--batch-first"],
            );
            for name in std::iter::once(&"y").chain(states) {
                let file = format!("{name}.npy");
                let want = read(&dir.join(&file));
                assert_close(
                    &format!("{case} {file}"),
                    &read(&out.join(&file)),
                    &want,
                    KERAS_CPU_ATOL,
                    0.0,
                );
            }
        }
    }

    /// Without --batch-first the input and a sequence output are time-major.
    #[test]
    fn forward_command_time_major() {
        let dir = case_dir("bilstm_gru");
        let x = read(&dir.join("x.npy")).permuted_axes(vec![1, 0, 2]);
        let tmp = scratch("cli-x");
        let x_path = tmp.join("x_tm.npy");
        npy::write(&x_path, &x.as_standard_layout().into_owned()).unwrap();
        let out = forward("bilstm_gru-tm", &dir.join("npy"), &x_path, &[]);
        let want = read(&dir.join("y.npy")).permuted_axes(vec![1, 0, 2]);
        assert_close(
            "time-major y",
            &read(&out.join("y.npy")),
            &want,
            KERAS_CPU_ATOL,
            0.0,
        );
    }

    /// `convert` refuses a whole model and says how to convert one of its layers, and
    /// that way works: one layer's folder converts.
    #[test]
    fn convert_refuses_a_whole_model_but_takes_one_layer() {
        let dir = case_dir("lstm_dense");
        let out = scratch("convert").join("lstm.safetensors");
        let convert = |weights: &Path| {
            Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
                .args(["convert", "--weights"])
                .arg(weights)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap()
        };
        let res = convert(&dir.join("npy"));
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(
            !res.status.success() && stderr.contains("whole Keras model"),
            "{stderr}"
        );
        let res = convert(&dir.join("npy/lstm"));
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success() && out.is_file(), "{stderr}");
    }

    /// A GRU model forced to `--cell lstm`: an error naming the layer.
    #[test]
    fn forward_command_refuses_a_gru_model_as_lstm() {
        let dir = case_dir("gru_state");
        let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args(["forward", "--device", "cpu", "--cell", "lstm", "--weights"])
            .arg(dir.join("npy"))
            .arg("--input")
            .arg(dir.join("x.npy"))
            .args(["--out", "unused"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{stderr}");
        assert!(
            stderr.contains("gru_1") && stderr.contains("GRU"),
            "{stderr}"
        );
    }

    #[test]
    fn forward_command_refuses_flags_a_keras_model_has_no_use_for() {
        let dir = case_dir("lstm_dense");
        let res = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args([
                "forward",
                "--device",
                "cpu",
                "--seq-lens",
                "x.npy",
                "--weights",
            ])
            .arg(dir.join("npy"))
            .arg("--input")
            .arg(dir.join("x.npy"))
            .args(["--out", "unused"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(
            !res.status.success() && stderr.contains("--seq-lens"),
            "{stderr}"
        );
    }
}

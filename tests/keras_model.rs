//! Stacked Keras models (`lstm_wgpu::interop::keras_model`) against Keras 3.15's own
//! outputs: the fixtures of `scripts/make_keras_fixtures.py` in tests/fixtures/keras/,
//! from the `.npy` folder (always), from `.keras` and `.weights.h5` (feature `hdf5`),
//! on the CPU and the GPU, and through `lstm-wgpu forward`. Bad models are errors.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use lstm_wgpu::interop::keras_model::npy_dir;
use lstm_wgpu::interop::keras_model::KerasModel;
use lstm_wgpu::interop::npy;
use lstm_wgpu::{GpuContext, LstmError};
use ndarray::{ArrayD, Ix3};

/// CPU vs Keras (torch backend, float32): the same f32 arithmetic in another order.
const CPU_ATOL: f32 = 1e-5;
/// GPU vs Keras: the GPU's own summation order and transcendental functions on top.
const GPU_ATOL: f32 = 1e-4;

/// Each fixture and the state files its model returns (in Keras's order).
const CASES: [(&str, &[&str]); 5] = [
    ("lstm_dense", &[]),
    ("bilstm_gru", &[]),
    ("gru_state", &["h_n"]),
    (
        "bilstm_state",
        &["forward_h_n", "forward_c_n", "backward_h_n", "backward_c_n"],
    ),
    ("bigru_dense_seq", &[]),
];

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(case)
}

fn read(path: &Path) -> ArrayD<f32> {
    npy::read_f32(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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
        check(case, states, &model, None, CPU_ATOL);
    }
}

#[test]
fn npy_folder_matches_keras_on_gpu() {
    let Some(ctx) = shared_context() else { return };
    for (case, states) in CASES {
        let model = KerasModel::load(&case_dir(case).join("npy")).unwrap();
        check(case, states, &model, Some(&ctx), GPU_ATOL);
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn keras_file_matches_keras_on_cpu_and_gpu() {
    let ctx = shared_context();
    for (case, states) in CASES {
        let model = KerasModel::load(&case_dir(case).join("model.keras")).unwrap();
        check(case, states, &model, None, CPU_ATOL);
        if let Some(ctx) = &ctx {
            check(case, states, &model, Some(ctx), GPU_ATOL);
        }
    }
}

/// The `.weights.h5` form takes its layer list from the `config.json` beside it.
#[cfg(feature = "hdf5")]
#[test]
fn weights_h5_with_sibling_config_matches_keras() {
    let model = KerasModel::load(&case_dir("lstm_dense").join("model.weights.h5")).unwrap();
    check("lstm_dense", &[], &model, None, CPU_ATOL);
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

/// A fresh empty directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-wgpu-keras-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The error of loading a case's npy folder with its model.json edited by `edit`.
fn load_edited(case: &str, edit: impl Fn(&str) -> String) -> LstmError {
    let (config, map) = npy_dir::read(&case_dir(case).join("npy")).unwrap();
    let edited = edit(&config);
    assert_ne!(edited, config, "{case}: the edit changed nothing");
    KerasModel::from_parts(&edited, &map, "edited").unwrap_err()
}

#[test]
fn unsupported_layer_class_is_named() {
    let e = load_edited("lstm_dense", |c| c.replace("\"Dense\"", "\"Conv1D\""));
    let msg = e.to_string();
    assert!(matches!(e, LstmError::Format { .. }), "{e:?}");
    assert!(msg.contains("\"dense\"") && msg.contains("Conv1D"), "{msg}");
}

#[test]
fn unsupported_settings_are_named() {
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "lstm_dense",
            "\"activation\": \"tanh\"",
            "\"activation\": \"relu\"",
            "activation",
        ),
        ("lstm_dense", "\"softmax\"", "\"gelu\"", "gelu"),
        (
            "bilstm_gru",
            "\"merge_mode\": \"concat\"",
            "\"merge_mode\": null",
            "merge_mode",
        ),
        (
            "gru_state",
            "\"go_backwards\": false",
            "\"go_backwards\": true",
            "go_backwards",
        ),
    ];
    for (case, from, to, named) in cases {
        let msg = load_edited(case, |c| c.replacen(from, to, 1)).to_string();
        assert!(
            msg.contains(named) && msg.contains("not supported"),
            "{case}: {msg}"
        );
    }
}

/// A weight of the wrong shape names the tensor and both shapes.
#[test]
fn wrong_weight_shape_names_the_tensor() {
    let (config, mut map) = npy_dir::read(&case_dir("lstm_dense").join("npy")).unwrap();
    map.tensors
        .insert("lstm_1/kernel".into(), ArrayD::zeros(vec![8, 20]));
    let e = KerasModel::from_parts(&config, &map, "test").unwrap_err();
    assert!(matches!(e, LstmError::Shape { .. }), "{e:?}");
    assert!(e.to_string().contains("lstm_1/kernel"), "{e}");

    map.tensors.remove("lstm_1/kernel");
    let e = KerasModel::from_parts(&config, &map, "test").unwrap_err();
    assert!(
        e.to_string().contains("lstm_1/kernel") && e.to_string().contains("missing"),
        "{e}"
    );
}

/// GRU weights under a config that says LSTM, and a reset_after=False bias read as
/// reset_after=True: shape errors, not a silently wrong model.
#[test]
fn gru_weights_under_another_cell_are_shape_errors() {
    for edit in [
        |c: &str| c.replace("\"class_name\": \"GRU\"", "\"class_name\": \"LSTM\""),
        |c: &str| c.replace("\"reset_after\": false", "\"reset_after\": true"),
    ] {
        let e = load_edited("gru_state", edit);
        assert!(matches!(e, LstmError::Shape { .. }), "{e:?}");
        assert!(e.to_string().contains("gru_1/"), "{e}");
    }
}

/// A Functional model that is not a chain: a layer fed by another than the previous
/// one, or with a second tensor (an `initial_state=` input).
#[test]
fn graph_that_is_not_a_chain_is_refused() {
    let edits: [fn(&mut serde_json::Value); 2] = [
        |v| {
            v["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] =
                "input_layer".into()
        },
        |v| {
            let extra = serde_json::json!({"config": {"keras_history": ["input_layer", 0, 0]}});
            v["config"]["layers"][2]["inbound_nodes"][0]["kwargs"]["initial_state"] = extra;
        },
    ];
    for edit in edits {
        let e = load_edited("bilstm_gru", |c| {
            let mut v: serde_json::Value = serde_json::from_str(c).unwrap();
            edit(&mut v);
            v.to_string()
        });
        assert!(e.to_string().contains("only a chain"), "{e}");
    }
}

#[test]
fn wrong_input_width_is_a_shape_error() {
    let model = KerasModel::load(&case_dir("lstm_dense").join("npy")).unwrap();
    let x = ndarray::Array3::<f32>::ones((2, 6, 5));
    let e = model.run(x.view(), None).unwrap_err();
    assert!(matches!(e, LstmError::Shape { .. }), "{e:?}");
}

#[test]
fn bad_model_json_is_a_format_error() {
    for text in [
        "",
        "{",
        "[1, 2]",
        "{\"class_name\": \"Sequential\", \"config\": {}}",
    ] {
        let e = KerasModel::from_parts(text, &Default::default(), "model.json").unwrap_err();
        assert!(matches!(e, LstmError::Format { .. }), "{text:?}: {e:?}");
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn truncated_or_corrupt_keras_files_are_errors() {
    let dir = scratch("corrupt");
    let bytes = std::fs::read(case_dir("lstm_dense").join("model.keras")).unwrap();
    for (name, data) in [
        ("truncated.keras", bytes[..bytes.len() / 2].to_vec()),
        ("empty.keras", vec![]),
        ("garbage.keras", vec![0x5a; 4096]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        let e = KerasModel::load(&path).unwrap_err();
        assert!(matches!(e, LstmError::Format { .. }), "{name}: {e:?}");
        assert!(e.to_string().contains("zip"), "{name}: {e}");
    }
    // A sound zip whose weights are not HDF5.
    let path = dir.join("bad_h5.keras");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("config.json", opts).unwrap();
    let config = std::fs::read(case_dir("lstm_dense").join("config.json")).unwrap();
    std::io::Write::write_all(&mut z, &config).unwrap();
    z.start_file("model.weights.h5", opts).unwrap();
    std::io::Write::write_all(&mut z, &[7u8; 1000]).unwrap();
    z.finish().unwrap();
    let e = KerasModel::load(&path).unwrap_err();
    assert!(e.to_string().contains("model.weights.h5"), "{e}");
}

#[cfg(feature = "cli")]
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
                    CPU_ATOL,
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
            CPU_ATOL,
            0.0,
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

//! Bad Keras models are errors that name the layer, the setting or the tensor, never a
//! panic or a silently wrong model: unsupported classes and settings, wrong shapes,
//! graphs that are not a chain, bad JSON, truncated or corrupt `.keras` files.

mod keras_common;

use keras_common::*;
use lstm_wgpu::interop::keras_model::npy_dir;
use lstm_wgpu::interop::keras_model::KerasModel;
use lstm_wgpu::LstmError;
use ndarray::ArrayD;

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

/// GRU weights under a config that says LSTM (a shape error naming the layer; with
/// `return_state`, the GRU's two outputs are one short of an LSTM's three), and a
/// reset_after=False bias read as reset_after=True: clear errors, not a silently wrong
/// model.
#[test]
fn gru_weights_under_another_cell_are_shape_errors() {
    fn as_lstm(c: &str) -> String {
        c.replace("\"class_name\": \"GRU\"", "\"class_name\": \"LSTM\"")
    }
    type Case = (&'static str, fn(&str) -> String, &'static str);
    let cases: [Case; 3] = [
        ("bilstm_gru", as_lstm, "gru/"),
        ("gru_state", as_lstm, "only a chain"),
        (
            "gru_state",
            |c| c.replace("\"reset_after\": false", "\"reset_after\": true"),
            "gru_1/",
        ),
    ];
    for (case, edit, want) in cases {
        let e = load_edited(case, edit);
        assert!(e.to_string().contains(want), "{case}, {want}: {e}");
    }
}

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

/// The outputs must be the last layer's output alone or with all of its states: a
/// Bidirectional LSTM gives 5, so 4 of them (`[out, h_f, c_f, h_b]`) are refused.
#[test]
fn some_of_the_states_as_outputs_are_refused() {
    let e = load_edited("bilstm_state", |c| {
        let mut v: serde_json::Value = serde_json::from_str(c).unwrap();
        v["config"]["output_layers"].as_array_mut().unwrap().pop();
        v.to_string()
    });
    assert!(e.to_string().contains("only a chain"), "{e}");
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

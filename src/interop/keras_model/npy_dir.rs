//! A Keras model as a folder of `.npy` files, for users without HDF5:
//!
//! ```text
//! model/
//!   model.json                 the model's config: what model.to_json() returns
//!   <layer name>/kernel.npy    one folder per layer with weights, named after the
//!   <layer name>/recurrent_kernel.npy     layer (config.layers[k].config.name), its
//!   <layer name>/bias.npy      variables under Keras's names (layer.get_weights() order)
//!   <bidirectional name>/forward_kernel.npy, …, backward_bias.npy
//! ```
//!
//! Each layer folder is the one-layer Keras `.npy` folder that `interop::keras` reads.

use std::path::Path;

use crate::error::{LstmError, Result};
use crate::interop::npy;
use crate::interop::tensors::TensorMap;

/// The name of the config file in a model folder.
pub const MODEL_JSON: &str = "model.json";

/// `model.json` and every layer folder's arrays, named `{layer}/{variable}`.
pub fn read(dir: &Path) -> Result<(String, TensorMap)> {
    let json_path = dir.join(MODEL_JSON);
    let config = std::fs::read_to_string(&json_path).map_err(|e| LstmError::io(&json_path, e))?;
    let entries = std::fs::read_dir(dir).map_err(|e| LstmError::io(dir, e))?;
    let mut map = TensorMap::default();
    for entry in entries {
        let entry = entry.map_err(|e| LstmError::io(dir, e))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(layer) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Not a layer: hidden folders (`.ipynb_checkpoints`) and folders without arrays.
        // (A layer whose folder is missing is named by the "missing tensor" error later.)
        if layer.starts_with('.') || !holds_npy(&path) {
            continue;
        }
        for (var, a) in npy::read_dir(&path)? {
            map.tensors.insert(format!("{layer}/{var}"), a);
        }
    }
    Ok((config, map))
}

/// Whether `dir` holds at least one `.npy` file.
fn holds_npy(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "npy"))
    })
}

//! Stacked Keras 3 models: a chain of `LSTM`, `GRU`, `Bidirectional`, `Dropout` and
//! `Dense` layers, loaded whole and run as Keras runs them.
//!
//! Three forms of a model load:
//! - a `.keras` file (feature `hdf5`): the zip `model.save` writes, holding
//!   `config.json` (the layers) and `model.weights.h5` (their weights);
//! - a `.weights.h5` file (feature `hdf5`) with a `config.json` beside it: the weights
//!   file alone has no architecture, so the layer list comes from that sibling
//!   (`model.to_json()` written as `config.json`, or the one inside a `.keras` file);
//! - a folder of `.npy` files with a `model.json` (no HDF5 needed): see [`npy_dir`].
//!
//! What runs exactly as Keras computes it: `LSTM` and `GRU` (`reset_after` either way,
//! `use_bias` either way) with their default activations, `return_sequences` and
//! `return_state`; `Bidirectional` with `merge_mode` `concat`, `sum`, `mul` or `ave`;
//! `Dense` with a `linear`, `softmax`, `relu`, `sigmoid` or `tanh` activation.
//! `Dropout` and the `dropout`/`recurrent_dropout` settings are ignored, as at
//! inference; `stateful` layers start from zero states. Masking, `go_backwards` outside
//! a `Bidirectional`, other activations, other layers and graphs that are not a chain
//! are errors that name the layer and the setting.
//!
//! ```no_run
//! # fn main() -> lstm_wgpu::Result<()> {
//! use lstm_wgpu::interop::keras_model::KerasModel;
//! let model = KerasModel::load("tests/fixtures/keras/lstm_dense/npy".as_ref())?;
//! let x = ndarray::Array3::<f32>::zeros((2, 6, model.input_size()));
//! let out = model.run(x.view(), None)?; // None: the CPU; Some(&ctx): that GPU
//! println!("{:?}", out.y.shape());
//! # Ok(())
//! # }
//! ```

pub mod convert;
#[cfg(feature = "hdf5")]
pub mod h5;
pub mod npy_dir;
pub mod run;
pub mod spec;

use std::path::Path;
use std::sync::Arc;

use ndarray::ArrayView3;

use crate::error::{LstmError, Result};
use crate::gpu::GpuContext;
use crate::interop::tensors::TensorMap;
use convert::Layer;
use run::KerasOutput;

/// A Keras model's layers with their weights in the crate's layout.
#[derive(Clone, Debug)]
pub struct KerasModel {
    layers: Vec<Layer>,
    input_size: usize,
    states_out: bool,
}

impl KerasModel {
    /// Loads a `.keras` file, a `.weights.h5` file beside a `config.json`, or a folder
    /// with a `model.json` (see the module's documentation).
    pub fn load(path: &Path) -> Result<Self> {
        let (config, map) = read(path)?;
        Self::from_parts(&config, &map, &path.display().to_string())
    }

    /// A model from its config (`config.json` text) and its tensors, named
    /// `{layer name}/{Keras variable name}`; `source` names the file in errors.
    pub fn from_parts(config: &str, map: &TensorMap, source: &str) -> Result<Self> {
        let spec = spec::parse(config, source)?;
        let (layers, input_size) = convert::build(&spec, map)?;
        Ok(KerasModel {
            layers,
            input_size,
            states_out: spec.states_out,
        })
    }

    /// Runs the model on `x` `[B, T, I]` (batch-first, as Keras): on the GPU of `gpu`,
    /// or on the CPU when it is `None`.
    pub fn run(&self, x: ArrayView3<f32>, gpu: Option<&Arc<GpuContext>>) -> Result<KerasOutput> {
        run::check_input(&x, self.input_size)?;
        run::run(
            &self.layers,
            self.states_out,
            x.as_standard_layout().into_owned(),
            gpu,
        )
    }

    /// The width `I` of the input.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// The layers in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Whether `path` looks like a Keras model this module loads: a `.keras` or `.h5`
    /// file, or a folder with a `model.json`.
    pub fn is_model_path(path: &Path) -> bool {
        let ext = path.extension().and_then(|e| e.to_str());
        matches!(ext, Some("keras" | "h5")) || path.join(npy_dir::MODEL_JSON).is_file()
    }
}

/// The config text and the tensors of a model in any of its three forms.
fn read(path: &Path) -> Result<(String, TensorMap)> {
    if path.is_dir() {
        return npy_dir::read(path);
    }
    let ext = path.extension().and_then(|e| e.to_str());
    match ext {
        Some("keras") => read_keras(path),
        Some("h5") => read_weights_h5(path),
        _ => Err(LstmError::format(
            path.display().to_string(),
            "a Keras model is a .keras file, a .weights.h5 file beside a config.json, \
             or a folder with a model.json",
        )),
    }
}

#[cfg(feature = "hdf5")]
fn read_keras(path: &Path) -> Result<(String, TensorMap)> {
    h5::read_keras(path)
}

#[cfg(feature = "hdf5")]
fn read_weights_h5(path: &Path) -> Result<(String, TensorMap)> {
    let config_path = path.with_file_name("config.json");
    let config = std::fs::read_to_string(&config_path).map_err(|e| {
        LstmError::format(
            path.display().to_string(),
            format!(
                "a .weights.h5 file has no layer list; it is read from {} beside it, \
                 which could not be read ({e}): save the model as .keras instead, or \
                 write model.to_json() there",
                config_path.display()
            ),
        )
    })?;
    Ok((config, h5::read_weights(path)?))
}

#[cfg(not(feature = "hdf5"))]
fn read_keras(path: &Path) -> Result<(String, TensorMap)> {
    Err(no_hdf5(path))
}

#[cfg(not(feature = "hdf5"))]
fn read_weights_h5(path: &Path) -> Result<(String, TensorMap)> {
    Err(no_hdf5(path))
}

#[cfg(not(feature = "hdf5"))]
fn no_hdf5(path: &Path) -> LstmError {
    LstmError::format(
        path.display().to_string(),
        "reading Keras's HDF5 weights needs lstm-wgpu built with `--features hdf5` \
         (and the HDF5 library); without it, load the model from a folder of .npy files \
         (scripts/make_keras_fixtures.py shows how to write one)",
    )
}

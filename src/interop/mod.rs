//! Weight files of other frameworks, converted to and from the crate's layout.
//!
//! Layers, each using only those below it:
//! - [`npy`]: `.npy` files (arrays in, arrays out);
//! - [`tensors`]: named tensors from a safetensors file or a `.npy` directory;
//! - [`torch`], [`keras`], [`onnx`]: one framework's names and layout each ([`torch_gru`]: `nn.GRU`, [`torch_lstmp`]: `nn.LSTM(proj_size)`);
//! - [`keras_model`]: a whole stacked Keras model (its layer list, its weights, and
//!   running it: the one interop module that uses `cpu` and `gpu`);
//! - [`format`](mod@format): which framework a file holds, and loading through its importer.

pub mod format;
pub mod keras;
pub mod keras_model;
pub mod npy;
pub mod onnx;
#[cfg(feature = "onnx")]
pub mod onnx_model;
pub mod tensors;
pub mod torch;
pub mod torch_gru;
pub mod torch_lstmp;

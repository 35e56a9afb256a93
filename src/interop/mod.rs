//! Weight files of other frameworks, converted to and from the crate's layout.

pub mod format;
pub mod keras;
pub mod npy;
pub mod onnx;
pub mod tensors;
pub mod torch;

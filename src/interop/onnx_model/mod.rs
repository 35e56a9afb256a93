//! Whole `.onnx` model files (feature `onnx`).

pub mod proto;

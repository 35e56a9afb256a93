//! The GRU, the LSTM's sibling: its shape and options ([`GruConfig`]), its parameters
//! in PyTorch's layout ([`GruWeights`]) and its inputs and outputs.
//!
//! The math, PyTorch's `nn.GRU` (gate order r, z, n):
//!
//! ```text
//! r = σ(W_ir x + b_ir + W_hr h + b_hr)
//! z = σ(W_iz x + b_iz + W_hz h + b_hz)
//! n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))        reset_after = true
//! n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)        reset_after = false
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! `reset_after = true` is PyTorch, Keras's default and ONNX `linear_before_reset = 1`;
//! `false` is Keras's `reset_after=False` and ONNX's default `linear_before_reset = 0`.

mod config;
mod io;
mod weights;

pub use config::GruConfig;
pub(crate) use io::check_gru_inputs;
pub use io::{GruOptions, GruOutput};
pub use weights::{GruLayerWeights, GruWeights};

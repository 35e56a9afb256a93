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

mod weights;

pub use weights::{GruLayerWeights, GruWeights};

use ndarray::{Array3, ArrayView3};

use crate::config::LstmConfig;
use crate::error::{LstmError, Result};
use crate::sequence::{check_inputs, Dims, ForwardOptions};

/// Shape and options of a (possibly stacked, possibly bidirectional) GRU: `torch.nn.GRU`'s
/// arguments plus where the reset gate acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GruConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub bias: bool,
    /// Input and output are `[B, T, F]` instead of `[T, B, F]`.
    pub batch_first: bool,
    /// The reset gate scales `W_hn h + b_hn` (true) or `h` before `W_hn` (false).
    pub reset_after: bool,
}

impl GruConfig {
    /// One layer, unidirectional, with bias, time-major, reset after: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        GruConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            batch_first: false,
            reset_after: true,
        }
    }
    pub fn layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    pub fn bidirectional(mut self, yes: bool) -> Self {
        self.bidirectional = yes;
        self
    }
    pub fn bias(mut self, yes: bool) -> Self {
        self.bias = yes;
        self
    }
    pub fn batch_first(mut self, yes: bool) -> Self {
        self.batch_first = yes;
        self
    }
    pub fn reset_after(mut self, yes: bool) -> Self {
        self.reset_after = yes;
        self
    }

    /// The LSTM config with the same sizes and layout. Sizes, layouts and input checks
    /// do not depend on the cell, so the GRU reuses the LSTM's (its 3H gate rows are
    /// within the LSTM's 4H bounds).
    pub(crate) fn layout(&self) -> LstmConfig {
        LstmConfig::new(self.input_size, self.hidden_size)
            .layers(self.num_layers)
            .bidirectional(self.bidirectional)
            .bias(self.bias)
            .batch_first(self.batch_first)
    }
    pub fn num_directions(&self) -> usize {
        self.layout().num_directions()
    }
    /// Width of the input that layer `layer` sees.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        self.layout().layer_input_size(layer)
    }
    /// Width of the output sequence: `D·H`.
    pub fn output_size(&self) -> usize {
        self.layout().output_size()
    }
    /// Checks that the sizes make sense (none zero, every matrix inside u32 indexing).
    pub fn validate(&self) -> Result<()> {
        self.layout().validate()
    }
}

/// Optional parts of a GRU forward call.
#[derive(Clone, Copy, Debug, Default)]
pub struct GruOptions<'a> {
    /// Initial `h_0` `[L·D, B, H]`; zeros when `None`.
    pub initial: Option<&'a Array3<f32>>,
    /// Valid length of each batch element (1..=T); all `T` when `None`.
    pub seq_lens: Option<&'a [usize]>,
}

/// Result of a GRU forward, in PyTorch's shapes (a GRU has no `c_n`).
#[derive(Clone, Debug, PartialEq)]
pub struct GruOutput {
    /// `[T, B, D·H]`, or `[B, T, D·H]` when batch-first; zero past each length.
    pub y: Array3<f32>,
    /// `[L·D, B, H]`: the state at each sequence's last valid step.
    pub h_n: Array3<f32>,
}

/// Checks `x` and the options against the config, as every path does first.
pub(crate) fn check_gru_inputs(
    config: &GruConfig,
    x: &ArrayView3<f32>,
    opts: &GruOptions,
) -> Result<Dims> {
    let dims = check_inputs(
        &config.layout(),
        x,
        &ForwardOptions {
            initial: None,
            seq_lens: opts.seq_lens,
        },
    )?;
    if let Some(h0) = opts.initial {
        let want = [
            config.num_layers * config.num_directions(),
            dims.b,
            config.hidden_size,
        ];
        if h0.shape() != want {
            return Err(LstmError::shape(
                "initial state h_0 [L·D, B, H]",
                format!("{want:?}"),
                format!("{:?}", h0.shape()),
            ));
        }
        if let Some(v) = h0.iter().find(|v| !v.is_finite()) {
            return Err(LstmError::value(
                "initial state h_0",
                format!("contains {v}"),
            ));
        }
    }
    Ok(dims)
}

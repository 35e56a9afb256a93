//! [`GruConfig`]: the shape and options of a GRU.

use crate::config::{stack_setters, LstmConfig};
use crate::error::Result;

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

stack_setters!(GruConfig);

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
    pub fn reset_after(mut self, yes: bool) -> Self {
        self.reset_after = yes;
        self
    }

    /// The LSTM config with the same sizes and layout. Sizes, layouts and input checks
    /// do not depend on the cell, so the GRU reuses the LSTM's (its 3H gate rows are
    /// within the LSTM's 4H bounds).
    pub fn layout(&self) -> LstmConfig {
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

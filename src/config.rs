//! What an LSTM looks like: sizes, layers, directions, peepholes, layout.

use crate::error::{LstmError, Result};

/// The builder setters every recurrent config shares (`LstmConfig`, `GruConfig`,
/// `LstmpConfig`: same field names, PyTorch's keyword names).
macro_rules! stack_setters {
    ($config:ty) => {
        impl $config {
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
            /// Input and output as `[B, T, F]` instead of `[T, B, F]`.
            pub fn batch_first(mut self, yes: bool) -> Self {
                self.batch_first = yes;
                self
            }
        }
    };
}
pub(crate) use stack_setters;

stack_setters!(LstmConfig);

/// Which connections from the cell state feed the gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Peephole {
    /// No peepholes: PyTorch, cuDNN, Keras.
    #[default]
    None,
    /// Element-wise peepholes `p_i⊙c_{t-1}`, `p_f⊙c_{t-1}`, `p_o⊙c_t`: ONNX `P`, Gers & Schmidhuber 2000.
    Diagonal,
    /// The seed article's equations taken literally: a full `[4H, H]` matrix
    /// `W_ch = (W_ci, W_cf, W_cc, W_co)` on `c_{t-1}` in all four gates.
    Full,
}

/// Shape and options of a (possibly stacked, possibly bidirectional) LSTM.
///
/// Mirrors `torch.nn.LSTM(input_size, hidden_size, num_layers, bias, batch_first,
/// bidirectional)` plus the peephole mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LstmConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub bias: bool,
    pub peephole: Peephole,
    /// Input and output are `[B, T, F]` instead of `[T, B, F]`.
    pub batch_first: bool,
}

impl LstmConfig {
    /// One layer, unidirectional, with bias, no peepholes, time-major: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            peephole: Peephole::None,
            batch_first: false,
        }
    }

    pub fn peephole(mut self, mode: Peephole) -> Self {
        self.peephole = mode;
        self
    }

    /// 2 for bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Width of the input that layer `layer` sees.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.num_directions() * self.hidden_size
        }
    }

    /// Width of the output sequence: `D·H`.
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.hidden_size
    }

    /// Width of the recurrent operand: `H`, or `2H` for [`Peephole::Full`] (`[h; c]`).
    pub fn recurrent_width(&self) -> usize {
        match self.peephole {
            Peephole::Full => 2 * self.hidden_size,
            _ => self.hidden_size,
        }
    }

    /// Checks that the sizes make sense: none is zero, every weight matrix stays well
    /// inside u32 indexing, and the parameter count of the whole stack fits in memory's
    /// address range (so no size computed from the config can overflow).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
        ] {
            if v == 0 {
                return Err(LstmError::Config(format!(
                    "{name} must be at least 1, got 0"
                )));
            }
        }
        // Sizes are indices into u32-addressed GPU buffers: keep 4H·max(I,2H) well inside u32.
        let widest = self
            .hidden_size
            .checked_mul(2)
            .map(|h2| h2.max(self.input_size));
        let largest = self
            .hidden_size
            .checked_mul(4)
            .zip(widest)
            .and_then(|(rows, cols)| rows.checked_mul(cols));
        if largest.is_none_or(|n| n > u32::MAX as usize) {
            return Err(LstmError::Config(format!(
                "input_size {} / hidden_size {} too large: a weight matrix would exceed 2^32 elements",
                self.input_size, self.hidden_size
            )));
        }
        if self.parameter_floats() > isize::MAX as u128 / 4 {
            return Err(LstmError::Config(format!(
                "num_layers {} too large: the parameters would not fit in memory",
                self.num_layers
            )));
        }
        Ok(())
    }

    /// Floats in all weight tensors of the stack, in u128 so that it cannot overflow.
    fn parameter_floats(&self) -> u128 {
        let (h, d) = (self.hidden_size as u128, self.num_directions() as u128);
        let peephole = match self.peephole {
            Peephole::None => 0,
            Peephole::Diagonal => 3 * h,
            Peephole::Full => 4 * h * h,
        };
        let bias = if self.bias { 8 * h } else { 0 };
        // Every layer-direction: W_hh, biases, peepholes; W_ih is I wide in layer 0, D·H above.
        let per_ld = 4 * h * h + bias + peephole;
        let first = 4 * h * self.input_size as u128 + per_ld;
        let upper = 4 * h * d * h + per_ld;
        d * (first + upper * (self.num_layers as u128 - 1))
    }
}

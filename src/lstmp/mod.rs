//! The LSTM with a projection (PyTorch's `nn.LSTM(proj_size = P)`, speech models'
//! LSTMP): the cell is the LSTM's, and its output is projected to `P < H` before it is
//! returned and fed back:
//!
//! ```text
//! z = W_ih x + b_ih + W_hh h_{t-1} + b_hh          W_hh: [4H, P]
//! c_t = f ⊙ c_{t-1} + i ⊙ g;   h_t = W_hr (o ⊙ tanh c_t)     W_hr: [P, H]
//! ```
//!
//! Outputs: `y` `[T, B, D·P]`, `h_n` `[L·D, B, P]`, `c_n` `[L·D, B, H]`. Layers above the
//! first read `D·P` features. CPU path (`cpu::lstmp_forward`, `cpu::lstmp_backward`).

use ndarray::{Array1, Array2, Array3, ArrayView3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{stack_setters, LstmConfig};
use crate::error::{LstmError, Result};
use crate::sequence::{check_inputs, Dims, ForwardOptions, LstmState};
use crate::weights::{check2, check_biases, check_layer_count, try_array2, LstmWeights};

/// Shape and options: `torch.nn.LSTM(input_size, hidden_size, num_layers, bias,
/// batch_first, bidirectional, proj_size)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LstmpConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    /// `P`, 1 ≤ P < H (PyTorch's rule).
    pub proj_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub bias: bool,
    pub batch_first: bool,
}

stack_setters!(LstmpConfig);

impl LstmpConfig {
    pub fn new(input_size: usize, hidden_size: usize, proj_size: usize) -> Self {
        LstmpConfig {
            input_size,
            hidden_size,
            proj_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            batch_first: false,
        }
    }
    /// The layout of what flows between layers and out: an LSTM config of width `P`
    /// (output size `D·P`, layer inputs, `h` shapes, input checks).
    pub fn layout(&self) -> LstmConfig {
        LstmConfig::new(self.input_size, self.proj_size)
            .layers(self.num_layers)
            .bidirectional(self.bidirectional)
            .bias(self.bias)
            .batch_first(self.batch_first)
    }
    pub fn num_directions(&self) -> usize {
        self.layout().num_directions()
    }
    pub fn layer_input_size(&self, layer: usize) -> usize {
        self.layout().layer_input_size(layer)
    }
    pub fn output_size(&self) -> usize {
        self.layout().output_size()
    }
    pub fn validate(&self) -> Result<()> {
        if self.proj_size == 0 || self.proj_size >= self.hidden_size {
            return Err(LstmError::Config(format!(
                "proj_size must be in 1..hidden_size ({}), got {}",
                self.hidden_size, self.proj_size
            )));
        }
        LstmConfig::new(self.input_size, self.hidden_size)
            .layers(self.num_layers)
            .bidirectional(self.bidirectional)
            .validate()?;
        self.layout().validate()
    }
}

/// One layer-direction, PyTorch's names and shapes (gate order i, f, g, o).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmpLayerWeights {
    /// `[4H, I_l]`.
    pub w_ih: Array2<f32>,
    /// `[4H, P]`.
    pub w_hh: Array2<f32>,
    pub b_ih: Option<Array1<f32>>,
    pub b_hh: Option<Array1<f32>>,
    /// `[P, H]`: `weight_hr_l{k}`.
    pub w_hr: Array2<f32>,
}

/// `layers[l * D + d]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmpWeights {
    pub config: LstmpConfig,
    pub layers: Vec<LstmpLayerWeights>,
}

impl LstmpWeights {
    /// PyTorch's initialisation: every parameter from U(-1/√H, 1/√H), seeded.
    pub fn init(config: &LstmpConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let (h, p) = (config.hidden_size, config.proj_size);
        let k = 1.0 / (h as f32).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut uniform = |shape: (usize, usize)| try_array2(shape, || rng.random_range(-k..k));
        let mut layers = Vec::new();
        for l in 0..config.num_layers {
            for _ in 0..config.num_directions() {
                let w_ih = uniform((4 * h, config.layer_input_size(l)))?;
                let w_hh = uniform((4 * h, p))?;
                let (b_ih, b_hh) = match config.bias {
                    true => {
                        let b = uniform((2, 4 * h))?;
                        (Some(b.row(0).to_owned()), Some(b.row(1).to_owned()))
                    }
                    false => (None, None),
                };
                let w_hr = uniform((p, h))?;
                layers.push(LstmpLayerWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    w_hr,
                });
            }
        }
        Ok(LstmpWeights {
            config: config.clone(),
            layers,
        })
    }

    pub fn index(&self, layer: usize, direction: usize) -> usize {
        layer * self.config.num_directions() + direction
    }

    /// Checks every tensor against the config; names the tensor (PyTorch's name) on mismatch.
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        c.validate()?;
        let d = c.num_directions();
        check_layer_count(self.layers.len(), c.num_layers, d)?;
        let (h, p) = (c.hidden_size, c.proj_size);
        for l in 0..c.num_layers {
            for dir in 0..d {
                let w = &self.layers[self.index(l, dir)];
                let sfx = LstmWeights::suffix(l, dir);
                check2(
                    &format!("weight_ih_{sfx}"),
                    &w.w_ih,
                    (4 * h, c.layer_input_size(l)),
                )?;
                check2(&format!("weight_hh_{sfx}"), &w.w_hh, (4 * h, p))?;
                check2(&format!("weight_hr_{sfx}"), &w.w_hr, (p, h))?;
                check_biases(&sfx, c.bias, [&w.b_ih, &w.b_hh], 4 * h)?;
                let all = w
                    .w_ih
                    .iter()
                    .chain(&w.w_hh)
                    .chain(&w.w_hr)
                    .chain(w.b_ih.iter().chain(&w.b_hh).flatten());
                if let Some(v) = all.into_iter().find(|v| !v.is_finite()) {
                    return Err(LstmError::value(
                        format!("weights of {sfx}"),
                        format!("contains {v}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Result of a forward pass in PyTorch's shapes: `y` `[T, B, D·P]` (or batch-first),
/// `h_n` `[L·D, B, P]`, `c_n` `[L·D, B, H]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmpOutput {
    pub y: Array3<f32>,
    pub h_n: Array3<f32>,
    pub c_n: Array3<f32>,
}

/// Checks `x`, the lengths, and an initial state (`h` `[L·D, B, P]`, `c` `[L·D, B, H]`).
pub(crate) fn check_lstmp_inputs(
    config: &LstmpConfig,
    x: &ArrayView3<f32>,
    opts: &ForwardOptions,
) -> Result<Dims> {
    config.validate()?;
    let dims = check_inputs(
        &config.layout(),
        x,
        &ForwardOptions {
            initial: None,
            seq_lens: opts.seq_lens,
        },
    )?;
    if let Some(LstmState { h, c }) = opts.initial {
        let ld = config.num_layers * config.num_directions();
        for (name, a, width) in [("h_0", h, config.proj_size), ("c_0", c, config.hidden_size)] {
            let want = [ld, dims.b, width];
            if a.shape() != want {
                return Err(LstmError::shape(
                    format!("initial state {name}"),
                    format!("{want:?}"),
                    format!("{:?}", a.shape()),
                ));
            }
            if let Some(v) = crate::sequence::first_non_finite(&a.view()) {
                return Err(LstmError::value(
                    format!("initial state {name}"),
                    format!("contains {v}"),
                ));
            }
        }
    }
    Ok(dims)
}

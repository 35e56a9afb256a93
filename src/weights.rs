//! LSTM parameters in PyTorch's layout and gate order (i, f, g, o).

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{LstmConfig, Peephole};
use crate::error::{LstmError, Result};

/// Peephole parameters of one layer-direction.
#[derive(Clone, Debug, PartialEq)]
pub enum PeepholeWeights {
    None,
    /// `[3H]`: `p_i`, `p_f`, `p_o` (in that order).
    Diagonal(Array1<f32>),
    /// `[4H, H]`: `W_ch = (W_ci; W_cf; W_cc; W_co)` on `c_{t-1}`.
    Full(Array2<f32>),
}

/// Parameters of one layer in one direction, PyTorch names and shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// `[4H, I_l]`, rows in gate order i, f, g, o.
    pub w_ih: Array2<f32>,
    /// `[4H, H]`.
    pub w_hh: Array2<f32>,
    /// `[4H]` each; `None` when the config has `bias = false`.
    pub b_ih: Option<Array1<f32>>,
    pub b_hh: Option<Array1<f32>>,
    pub peephole: PeepholeWeights,
}

impl LayerWeights {
    /// `b_ih + b_hh`, or zeros without bias: the bias the hoisted input projection adds.
    /// Always `[4H]` (`w_ih`'s rows); [`LstmWeights::validate`] checks the biases' lengths,
    /// and a bias of another length adds only the entries it has (never a panic).
    pub fn combined_bias(&self) -> Array1<f32> {
        let mut sum = Array1::zeros(self.w_ih.nrows());
        for b in [&self.b_ih, &self.b_hh].into_iter().flatten() {
            sum.iter_mut().zip(b).for_each(|(s, v)| *s += v);
        }
        sum
    }
}

/// All parameters of an LSTM: `layers[l * D + d]` is layer `l`, direction `d` (0 forward, 1 reverse).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmWeights {
    pub config: LstmConfig,
    pub layers: Vec<LayerWeights>,
}

impl LstmWeights {
    /// PyTorch's initialisation: every parameter from U(-1/√H, 1/√H), seeded.
    ///
    /// Sizes too large for this machine's memory are an error, not an abort.
    pub fn init(config: &LstmConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let h = config.hidden_size;
        let k = 1.0 / (h as f32).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut uniform = |shape: (usize, usize)| try_array2(shape, || rng.random_range(-k..k));
        let count = config.num_layers * config.num_directions();
        let mut layers = Vec::new();
        layers
            .try_reserve_exact(count)
            .map_err(|_| too_large(format!("{count} layer-directions")))?;
        for l in 0..config.num_layers {
            for _ in 0..config.num_directions() {
                let w_ih = uniform((4 * h, config.layer_input_size(l)))?;
                let w_hh = uniform((4 * h, h))?;
                let (b_ih, b_hh) = if config.bias {
                    let b = uniform((2, 4 * h))?;
                    (Some(b.row(0).to_owned()), Some(b.row(1).to_owned()))
                } else {
                    (None, None)
                };
                let peephole = match config.peephole {
                    Peephole::None => PeepholeWeights::None,
                    Peephole::Diagonal => {
                        PeepholeWeights::Diagonal(uniform((1, 3 * h))?.row(0).to_owned())
                    }
                    Peephole::Full => PeepholeWeights::Full(uniform((4 * h, h))?),
                };
                layers.push(LayerWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    peephole,
                });
            }
        }
        Ok(LstmWeights {
            config: config.clone(),
            layers,
        })
    }

    /// Index into `layers` of layer `l`, direction `d`.
    pub fn index(&self, layer: usize, direction: usize) -> usize {
        layer * self.config.num_directions() + direction
    }

    /// PyTorch's parameter-name suffix for layer `l`, direction `d`: `l0`, `l0_reverse`, …
    pub fn suffix(layer: usize, direction: usize) -> String {
        if direction == 0 {
            format!("l{layer}")
        } else {
            format!("l{layer}_reverse")
        }
    }

    /// Checks every tensor against the config; names the tensor on mismatch.
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        c.validate()?;
        let d = c.num_directions();
        check_layer_count(self.layers.len(), c.num_layers, d)?;
        let h = c.hidden_size;
        for l in 0..c.num_layers {
            for dir in 0..d {
                let w = &self.layers[self.index(l, dir)];
                let sfx = Self::suffix(l, dir);
                check2(
                    &format!("weight_ih_{sfx}"),
                    &w.w_ih,
                    (4 * h, c.layer_input_size(l)),
                )?;
                check2(&format!("weight_hh_{sfx}"), &w.w_hh, (4 * h, h))?;
                check_biases(&sfx, c.bias, [&w.b_ih, &w.b_hh], 4 * h)?;
                match (c.peephole, &w.peephole) {
                    (Peephole::None, PeepholeWeights::None) => {}
                    (Peephole::Diagonal, PeepholeWeights::Diagonal(p)) => {
                        check1(&format!("weight_peephole_{sfx}"), p, 3 * h)?
                    }
                    (Peephole::Full, PeepholeWeights::Full(p)) => {
                        check2(&format!("weight_ch_{sfx}"), p, (4 * h, h))?
                    }
                    (mode, _) => {
                        return Err(LstmError::shape(
                            format!("peephole weights of {sfx}"),
                            format!("{mode:?}"),
                            "a different peephole kind",
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// Fails if any parameter is NaN or infinite.
    pub fn check_finite(&self) -> Result<()> {
        for (i, w) in self.layers.iter().enumerate() {
            let peep = match &w.peephole {
                PeepholeWeights::None => None,
                PeepholeWeights::Diagonal(p) => p.iter().find(|v| !v.is_finite()).copied(),
                PeepholeWeights::Full(p) => p.iter().find(|v| !v.is_finite()).copied(),
            };
            let bad = w
                .w_ih
                .iter()
                .chain(w.w_hh.iter())
                .find(|v| !v.is_finite())
                .copied()
                .or(peep);
            let bad = bad.or_else(|| {
                w.b_ih
                    .iter()
                    .chain(w.b_hh.iter())
                    .flat_map(|b| b.iter())
                    .find(|v| !v.is_finite())
                    .copied()
            });
            if let Some(v) = bad {
                return Err(LstmError::value(
                    format!("weights of layer-direction {i}"),
                    format!("contains {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// A stack's layer-direction count: `num_layers × directions` entries.
pub(crate) fn check_layer_count(len: usize, num_layers: usize, dirs: usize) -> Result<()> {
    if len != num_layers * dirs {
        return Err(LstmError::shape(
            "layer-direction count",
            format!(
                "{} (num_layers {num_layers} × directions {dirs})",
                num_layers * dirs
            ),
            len.to_string(),
        ));
    }
    Ok(())
}

/// Checks a layer-direction's two biases (`bias_ih_{sfx}`, `bias_hh_{sfx}`) against the
/// config: `len` floats each with `bias` on, absent without; names the tensor otherwise.
pub(crate) fn check_biases(
    sfx: &str,
    bias: bool,
    biases: [&Option<Array1<f32>>; 2],
    len: usize,
) -> Result<()> {
    for (name, b) in ["bias_ih", "bias_hh"].into_iter().zip(biases) {
        let name = format!("{name}_{sfx}");
        match (bias, b) {
            (true, Some(b)) => check1(&name, b, len)?,
            (false, None) => {}
            (true, None) => return Err(LstmError::shape(name, format!("[{len}]"), "missing")),
            (false, Some(_)) => {
                return Err(LstmError::shape(name, "absent (bias = false)", "present"))
            }
        }
    }
    Ok(())
}

pub(crate) fn check2(name: &str, a: &Array2<f32>, want: (usize, usize)) -> Result<()> {
    if a.dim() != want {
        return Err(LstmError::shape(
            name,
            format!("{:?}", [want.0, want.1]),
            format!("{:?}", a.shape()),
        ));
    }
    Ok(())
}

pub(crate) fn check1(name: &str, a: &Array1<f32>, want: usize) -> Result<()> {
    if a.len() != want {
        return Err(LstmError::shape(
            name,
            format!("[{want}]"),
            format!("{:?}", a.shape()),
        ));
    }
    Ok(())
}

/// An error for parameters that do not fit in this machine's memory.
pub(crate) fn too_large(what: String) -> LstmError {
    LstmError::Config(format!("cannot allocate {what}: not enough memory"))
}

/// `Array2::from_shape_simple_fn` (same fill order) that reports a failed allocation
/// as an error instead of aborting the process.
pub(crate) fn try_array2(shape: (usize, usize), mut f: impl FnMut() -> f32) -> Result<Array2<f32>> {
    let n = shape
        .0
        .checked_mul(shape.1)
        .ok_or_else(|| too_large(format!("a {}×{} matrix", shape.0, shape.1)))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| too_large(format!("a {}×{} matrix", shape.0, shape.1)))?;
    v.extend(std::iter::repeat_with(&mut f).take(n));
    Array2::from_shape_vec(shape, v)
        .map_err(|e| LstmError::shape("weight matrix", format!("{shape:?}"), e.to_string()))
}

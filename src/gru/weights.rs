//! GRU parameters in PyTorch's layout and gate order (r, z, n).

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::GruConfig;
use crate::error::{LstmError, Result};
use crate::weights::{check2, check_biases, check_layer_count, try_array2, LstmWeights};

/// Parameters of one layer in one direction, PyTorch's names and shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct GruLayerWeights {
    /// `[3H, I_l]`, rows in gate order r, z, n.
    pub w_ih: Array2<f32>,
    /// `[3H, H]`.
    pub w_hh: Array2<f32>,
    /// `[3H]` each; `None` when the config has `bias = false`.
    pub b_ih: Option<Array1<f32>>,
    pub b_hh: Option<Array1<f32>>,
}

/// All parameters of a GRU: `layers[l * D + d]` is layer `l`, direction `d` (0 forward, 1 reverse).
#[derive(Clone, Debug, PartialEq)]
pub struct GruWeights {
    pub config: GruConfig,
    pub layers: Vec<GruLayerWeights>,
}

impl GruWeights {
    /// PyTorch's initialisation: every parameter from U(-1/√H, 1/√H), seeded.
    pub fn init(config: &GruConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let h = config.hidden_size;
        let k = 1.0 / (h as f32).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut uniform = |shape: (usize, usize)| try_array2(shape, || rng.random_range(-k..k));
        let mut layers = Vec::new();
        for l in 0..config.num_layers {
            for _ in 0..config.num_directions() {
                let w_ih = uniform((3 * h, config.layer_input_size(l)))?;
                let w_hh = uniform((3 * h, h))?;
                let (b_ih, b_hh) = if config.bias {
                    let b = uniform((2, 3 * h))?;
                    (Some(b.row(0).to_owned()), Some(b.row(1).to_owned()))
                } else {
                    (None, None)
                };
                layers.push(GruLayerWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                });
            }
        }
        Ok(GruWeights {
            config: config.clone(),
            layers,
        })
    }

    /// Index into `layers` of layer `l`, direction `d`.
    pub fn index(&self, layer: usize, direction: usize) -> usize {
        layer * self.config.num_directions() + direction
    }

    /// Checks every tensor against the config; names the tensor (PyTorch's name) on mismatch.
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        c.validate()?;
        let d = c.num_directions();
        check_layer_count(self.layers.len(), c.num_layers, d)?;
        let h = c.hidden_size;
        for l in 0..c.num_layers {
            for dir in 0..d {
                let w = &self.layers[self.index(l, dir)];
                let sfx = LstmWeights::suffix(l, dir);
                check2(
                    &format!("weight_ih_{sfx}"),
                    &w.w_ih,
                    (3 * h, c.layer_input_size(l)),
                )?;
                check2(&format!("weight_hh_{sfx}"), &w.w_hh, (3 * h, h))?;
                check_biases(&sfx, c.bias, [&w.b_ih, &w.b_hh], 3 * h)?;
            }
        }
        Ok(())
    }

    /// Fails if any parameter is NaN or infinite.
    pub fn check_finite(&self) -> Result<()> {
        for (i, w) in self.layers.iter().enumerate() {
            let biases = w.b_ih.iter().chain(w.b_hh.iter()).flat_map(|b| b.iter());
            if let Some(v) = w
                .w_ih
                .iter()
                .chain(w.w_hh.iter())
                .chain(biases)
                .find(|v| !v.is_finite())
            {
                return Err(LstmError::value(
                    format!("weights of GRU layer-direction {i}"),
                    format!("contains {v}"),
                ));
            }
        }
        Ok(())
    }
}

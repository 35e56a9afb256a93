//! Weight initialisation schemes for training from scratch.

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::LstmConfig;
use crate::error::Result;
use crate::gru::{GruConfig, GruWeights};
use crate::weights::LstmWeights;

/// How to initialise a fresh LSTM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Init {
    /// PyTorch's `nn.LSTM`: every parameter U(−1/√H, 1/√H).
    Torch,
    /// Keras's `LSTM`: Glorot-uniform `W_ih`, orthogonal `W_hh`, zero biases.
    #[default]
    Keras,
}

impl Init {
    pub fn weights(self, config: &LstmConfig, seed: u64) -> Result<LstmWeights> {
        let mut w = LstmWeights::init(config, seed)?;
        if self == Init::Keras {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006b_6572_6173);
            for l in &mut w.layers {
                keras_layer(
                    &mut l.w_ih,
                    &mut l.w_hh,
                    [&mut l.b_ih, &mut l.b_hh],
                    &mut rng,
                );
            }
        }
        Ok(w)
    }

    /// The same schemes for a GRU (Keras's `GRU` initialises like its `LSTM`).
    pub fn gru_weights(self, config: &GruConfig, seed: u64) -> Result<GruWeights> {
        let mut w = GruWeights::init(config, seed)?;
        if self == Init::Keras {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006b_6572_6173);
            for l in &mut w.layers {
                keras_layer(
                    &mut l.w_ih,
                    &mut l.w_hh,
                    [&mut l.b_ih, &mut l.b_hh],
                    &mut rng,
                );
            }
        }
        Ok(w)
    }
}

/// Keras's scheme for one layer-direction: Glorot-uniform `W_ih`, orthogonal `W_hh`,
/// zero biases.
fn keras_layer(
    w_ih: &mut Array2<f32>,
    w_hh: &mut Array2<f32>,
    biases: [&mut Option<Array1<f32>>; 2],
    rng: &mut ChaCha8Rng,
) {
    let (rows, cols) = w_ih.dim();
    let limit = (6.0 / (rows + cols) as f32).sqrt();
    *w_ih = Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-limit..limit));
    *w_hh = orthogonal_columns(w_hh.nrows(), w_hh.ncols(), rng);
    for b in biases.into_iter().flatten() {
        *b = Array1::zeros(b.len());
    }
}

/// A `[rows, cols]` matrix (rows ≥ cols) with orthonormal columns: Gram-Schmidt on a
/// Gaussian matrix, like Keras's `Orthogonal` initializer (for `W_hhᵀ` = `[H, 4H]`).
fn orthogonal_columns(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let mut normal = || {
        // Box-Muller: two uniforms to one standard normal.
        let (u, v): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut q = Array2::<f64>::from_shape_simple_fn((rows, cols), &mut normal);
    for j in 0..cols {
        for k in 0..j {
            let d = q.column(j).dot(&q.column(k));
            let qk = q.column(k).to_owned();
            q.column_mut(j).scaled_add(-d, &qk);
        }
        let n = q.column(j).dot(&q.column(j)).sqrt();
        q.column_mut(j).mapv_inplace(|v| v / n);
    }
    q.mapv(|v| v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_columns_are_orthonormal() {
        let q = orthogonal_columns(12, 3, &mut ChaCha8Rng::seed_from_u64(1));
        let g = q.t().dot(&q);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((g[[i, j]] - want).abs() < 1e-5, "{g:?}");
            }
        }
    }
}

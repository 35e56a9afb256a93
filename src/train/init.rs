//! Weight initialisation schemes for training from scratch.

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::LstmConfig;
use crate::error::Result;
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
        if self == Init::Torch {
            return Ok(w);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006b_6572_6173);
        for layer in &mut w.layers {
            let (rows, cols) = layer.w_ih.dim();
            let limit = (6.0 / (rows + cols) as f32).sqrt();
            layer.w_ih =
                Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-limit..limit));
            layer.w_hh = orthogonal_columns(layer.w_hh.nrows(), layer.w_hh.ncols(), &mut rng);
            for b in [&mut layer.b_ih, &mut layer.b_hh].into_iter().flatten() {
                *b = Array1::zeros(b.len());
            }
        }
        Ok(w)
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

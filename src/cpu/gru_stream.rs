//! CPU twin of `gpu::GpuGruStream`: a stateful GRU stream whose `h` carries from one
//! window to the next (Keras `GRU(stateful=True)`). Pushing a sequence in any split
//! gives the outputs of one forward over the whole sequence, bit for bit.

use ndarray::{Array3, ArrayView2, ArrayView3, Axis};

use super::gru::gru_forward;
use super::stream::{check_row, check_stream};
use crate::error::{LstmError, Result};
use crate::gru::{GruOptions, GruWeights};

/// A stream of windows through `weights` for a fixed batch.
pub struct CpuGruStream<'w> {
    weights: &'w GruWeights,
    /// `[L, B, H]`.
    h: Array3<f32>,
}

impl<'w> CpuGruStream<'w> {
    /// A stream of `batch` rows from a zero state (not for bidirectional models).
    pub fn new(weights: &'w GruWeights, batch: usize) -> Result<Self> {
        weights.validate()?;
        let c = &weights.config;
        check_stream(c.bidirectional, batch)?;
        Ok(CpuGruStream {
            weights,
            h: Array3::zeros((c.num_layers, batch, c.hidden_size)),
        })
    }

    pub fn batch(&self) -> usize {
        self.h.dim().1
    }

    /// Runs the window `x` from the stream's state; the state moves on.
    pub fn push(&mut self, x: ArrayView3<f32>) -> Result<Array3<f32>> {
        let opts = GruOptions {
            initial: Some(&self.h),
            seq_lens: None,
        };
        let out = gru_forward(self.weights, x, opts)?;
        self.h = out.h_n;
        Ok(out.y)
    }

    /// The current state `[L, B, H]`.
    pub fn state(&self) -> &Array3<f32> {
        &self.h
    }

    /// Replaces the whole state (same shape).
    pub fn set_state(&mut self, h: &Array3<f32>) -> Result<()> {
        if h.dim() != self.h.dim() {
            return Err(LstmError::shape(
                "stream state h",
                format!("{:?}", self.h.shape()),
                format!("{:?}", h.shape()),
            ));
        }
        self.h.assign(h);
        Ok(())
    }

    /// Zeroes the state of the given rows; the other rows carry on.
    pub fn reset_rows(&mut self, rows: &[usize]) -> Result<()> {
        let (layers, _, hidden) = self.h.dim();
        let zeros = ndarray::Array2::zeros((layers, hidden));
        rows.iter()
            .try_for_each(|&row| self.set_row(row, zeros.view()))
    }

    /// Sets the state of one row: `h` `[L, H]`.
    pub fn set_row(&mut self, row: usize, h: ArrayView2<f32>) -> Result<()> {
        check_row(self.h.dim(), row, &[h.view()])?;
        self.h.index_axis_mut(Axis(1), row).assign(&h);
        Ok(())
    }
}

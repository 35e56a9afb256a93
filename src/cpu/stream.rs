//! CPU twin of `gpu::GpuStream`: a stateful stream whose `(h, c)` carries from one
//! window to the next. Pushing a sequence in any split gives the outputs of one
//! forward over the whole sequence, bit for bit.

use ndarray::{Array3, ArrayView2, ArrayView3, Axis};

use super::forward::forward;
use crate::error::{LstmError, Result};
use crate::sequence::{zero_state, ForwardOptions, LstmState};
use crate::weights::LstmWeights;

/// A stream of windows through `weights` for a fixed batch.
pub struct CpuStream<'w> {
    weights: &'w LstmWeights,
    state: LstmState,
}

impl<'w> CpuStream<'w> {
    /// A stream of `batch` rows from a zero state (not for bidirectional models).
    pub fn new(weights: &'w LstmWeights, batch: usize) -> Result<Self> {
        weights.validate()?;
        check_stream(weights.config.bidirectional, batch)?;
        Ok(CpuStream {
            weights,
            state: zero_state(&weights.config, batch),
        })
    }

    pub fn batch(&self) -> usize {
        self.state.h.dim().1
    }

    /// Runs the window `x` from the stream's state; the state moves on.
    pub fn push(&mut self, x: ArrayView3<f32>) -> Result<Array3<f32>> {
        let opts = ForwardOptions {
            initial: Some(&self.state),
            seq_lens: None,
        };
        let out = forward(self.weights, x, opts)?;
        self.state = LstmState {
            h: out.h_n,
            c: out.c_n,
        };
        Ok(out.y)
    }

    /// The current state `[L, B, H]`.
    pub fn state(&self) -> &LstmState {
        &self.state
    }

    /// Replaces the whole state (same shape).
    pub fn set_state(&mut self, s: &LstmState) -> Result<()> {
        if s.h.dim() != self.state.h.dim() || s.c.dim() != self.state.c.dim() {
            return Err(LstmError::shape(
                "stream state h / c",
                format!("{:?}", self.state.h.shape()),
                format!("{:?} / {:?}", s.h.shape(), s.c.shape()),
            ));
        }
        self.state = s.clone();
        Ok(())
    }

    /// Zeroes the state of the given rows; the other rows carry on.
    pub fn reset_rows(&mut self, rows: &[usize]) -> Result<()> {
        let (layers, _, hidden) = self.state.h.dim();
        let zeros = ndarray::Array2::zeros((layers, hidden));
        for &row in rows {
            self.set_row(row, zeros.view(), zeros.view())?;
        }
        Ok(())
    }

    /// Sets the state of one row: `h`, `c` `[L, H]`.
    pub fn set_row(&mut self, row: usize, h: ArrayView2<f32>, c: ArrayView2<f32>) -> Result<()> {
        check_row(self.state.h.dim(), row, &[h.view(), c.view()])?;
        self.state.h.index_axis_mut(Axis(1), row).assign(&h);
        self.state.c.index_axis_mut(Axis(1), row).assign(&c);
        Ok(())
    }
}

/// A stream runs forward in time over at least one row.
pub(super) fn check_stream(bidirectional: bool, batch: usize) -> Result<()> {
    if bidirectional {
        return Err(LstmError::Config(
            "a bidirectional model cannot stream: its reverse direction starts at the sequence's end".into(),
        ));
    }
    if batch == 0 {
        return Err(LstmError::Config(
            "a stream needs a batch of at least 1".into(),
        ));
    }
    Ok(())
}

/// `row` is a row of a `[L, B, H]` state and every part given for it is `[L, H]`.
pub(super) fn check_row(
    (layers, batch, hidden): (usize, usize, usize),
    row: usize,
    parts: &[ArrayView2<f32>],
) -> Result<()> {
    if row >= batch {
        return Err(LstmError::value(
            "stream row",
            format!("{row} is not below the batch of {batch}"),
        ));
    }
    if parts.iter().any(|p| p.dim() != (layers, hidden)) {
        let got: Vec<_> = parts.iter().map(|p| p.shape().to_vec()).collect();
        return Err(LstmError::shape(
            "stream row state",
            format!("[{layers}, {hidden}] each"),
            format!("{got:?}"),
        ));
    }
    Ok(())
}

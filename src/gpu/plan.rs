//! How a sequence is split into chunks that fit one storage binding: the host's part
//! of scheduling buffers across a long sequence.

use std::ops::Range;

use super::kernels::lstm_step;
use super::kernels::matmul;
use crate::error::{LstmError, Result};

/// The most steps in one chunk, however small the rows: bounds the per-chunk index
/// table and scratch buffers, so memory beyond the input and output does not grow
/// with T (a million-step sequence is ~250 chunks).
pub(crate) const MAX_CHUNK_STEPS: usize = 4096;

/// How a sequence of `t` steps is split into chunks of at most `len` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkPlan {
    pub t: usize,
    pub len: usize,
    pub count: usize,
}

impl ChunkPlan {
    /// `widest` is the widest per-row buffer (max of I, D·H, 4H) in floats; every
    /// per-chunk buffer holds `len · b · width` floats and must fit `max_binding` bytes;
    /// a chunk holds at most `max_steps` steps ([`MAX_CHUNK_STEPS`] where chunking is
    /// supported, unbounded for the paths that need the whole sequence in one chunk).
    pub fn new(
        t: usize,
        b: usize,
        (widest, hidden): (usize, usize),
        max_binding: u64,
        limits: &wgpu::Limits,
        max_steps: usize,
    ) -> Result<ChunkPlan> {
        let per_step = 4 * (b * widest) as u64;
        let state = 4 * (2 * b * hidden) as u64;
        if per_step > max_binding || state > max_binding {
            return Err(LstmError::DeviceLimit(format!(
                "one time step of batch {b} needs a {}-byte storage binding, the device allows {max_binding}",
                per_step.max(state)
            )));
        }
        let max_groups = limits.max_compute_workgroups_per_dimension as usize;
        let grid_ok = hidden.div_ceil(lstm_step::GEMV_TILE.0 as usize) <= max_groups
            && b.div_ceil(lstm_step::GEMV_TILE.1 as usize) <= max_groups;
        if !grid_ok || b > max_groups * matmul::MATMUL_TILE as usize {
            return Err(LstmError::DeviceLimit(format!(
                "hidden size {hidden} / batch {b} need more than the device's {max_groups} workgroups per dimension"
            )));
        }
        let by_binding = (max_binding / per_step) as usize;
        let by_grid = max_groups * matmul::MATMUL_TILE as usize / b;
        let len = t.min(by_binding).min(by_grid).min(max_steps).max(1);
        Ok(ChunkPlan {
            t,
            len,
            count: t.div_ceil(len),
        })
    }

    pub fn range(&self, chunk: usize) -> Range<usize> {
        chunk * self.len..((chunk + 1) * self.len).min(self.t)
    }

    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.count).map(|c| self.range(c))
    }
}

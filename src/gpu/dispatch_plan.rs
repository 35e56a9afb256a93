//! What a forward of a `(T, B)` shape launches: the step kernel's form and grid, and
//! the dispatches per forward (and its backward's steps) — the numbers that say how
//! much of a GPU one step fills.

use super::kernels::lstm_step::{self, StepTiling};
use super::kernels::Cell;
use super::lstm::GpuLstm;
use super::stacked::{backward_fuses_directions, fuses_directions};
use crate::error::Result;

/// The launches of one forward (see [`GpuLstm::dispatch_plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchPlan {
    /// The step kernel's form for this batch on this adapter.
    pub tiling: StepTiling,
    /// Workgroups of one step dispatch (units × batch rows).
    pub step_workgroups: (u32, u32),
    /// Invocations per workgroup of the step kernel.
    pub step_invocations: u32,
    /// Directions one step dispatch of an inference forward steps (its grid z): 2 for a
    /// bidirectional layer's forward of one chunk, else 1. A training forward steps both
    /// only where its backward can too ([`Self::backward_step_dispatches`] says).
    pub step_directions: u32,
    /// Chunks of the sequence (one input-projection GEMM each, per layer-direction, or
    /// per layer when a dispatch steps both directions).
    pub chunks: usize,
    /// Dispatches per forward: per layer-direction (per layer when a dispatch steps both
    /// directions) one projection per chunk and one step per time step (two for a GRU
    /// with the reset gate before the product).
    pub dispatches: usize,
    /// Step dispatches of a backward of this shape (`GpuLstm::forward_backward`, the
    /// classifiers' training): per layer-direction, or per layer where they step both
    /// directions, one per time step and a final one (each two for that GRU).
    pub backward_step_dispatches: usize,
}

impl DispatchPlan {
    /// Invocations of one step dispatch.
    pub fn step_threads(&self) -> u64 {
        let (x, y) = self.step_workgroups;
        let groups = u64::from(x) * u64::from(y) * u64::from(self.step_directions);
        groups * u64::from(self.step_invocations)
    }
}

impl GpuLstm {
    /// What a forward of `t` steps at batch `b` launches on this adapter.
    pub fn dispatch_plan(&self, t: usize, b: usize) -> Result<DispatchPlan> {
        let cfg = self.config();
        let plan = self.plan(t, b)?;
        let tiling = self.record_options(b, false).tiling;
        let (_, grid) = lstm_step::pipeline(
            self.ctx.kernels()?,
            self.weights.cell,
            tiling,
            cfg.hidden_size,
            b,
        );
        let dirs = cfg.num_directions();
        let both = fuses_directions(&self.ctx, &self.weights, (&plan, b));
        let sets = cfg.num_layers * if both { 1 } else { dirs };
        let backward_both = backward_fuses_directions(&self.ctx, &self.weights, (&plan, b));
        let backward_sets = cfg.num_layers * if backward_both { 1 } else { dirs };
        let per_step = match self.weights.cell {
            Cell::GruResetBefore => 2,
            Cell::Lstm | Cell::LstmF16 | Cell::Gru => 1,
        };
        Ok(DispatchPlan {
            tiling,
            step_workgroups: grid,
            step_invocations: lstm_step::workgroup_invocations(tiling),
            step_directions: if both { 2 } else { 1 },
            chunks: plan.count,
            dispatches: sets * (plan.count + per_step * t),
            backward_step_dispatches: backward_sets * per_step * (t + 1),
        })
    }
}

//! `gru_reset_before_step_backward.wgsl`'s host side: the BPTT step of a GRU with the
//! reset gate before the recurrent product, two dispatches per step (see the shader's
//! header). The first is `lstm_step_backward`'s form, the second `main_reset_n`, bound
//! alike (`lstm_step_backward::prepare` binds both for the schedule). CPU twin: [`crate::cpu::gru_step_backward()`] with `reset_after = false`.

use ndarray::Array2;

use super::gru_step_backward::{self, GruStepGradsIn};
use super::Cell;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gru::GruLayerWeights;

/// The kernels' dispatch sequence for one step (the step's two dispatches, then FINAL,
/// which adds `dz·W_rec`), in the form [`GpuContext::software_kernels`] selects, from
/// [`crate::cpu::gru_step_backward()`]'s layout (`gates` (r, z, n, 0) as the forward
/// kept them). Returns `dz` `[B, 4H]` in the kernel's slots (∂r_pre, ∂z_pre, 0, ∂n_pre)
/// and `dh_{t-1}`; rows with `active[b] == false` are past their length. With `poison`
/// outputs (and `prev`'s r ⊙ h half, which the step must not read) start as NaN.
pub fn run(
    ctx: &GpuContext,
    w: &GruLayerWeights,
    g: &GruStepGradsIn,
    active: &[bool],
    poison: bool,
) -> Result<(Array2<f32>, Array2<f32>)> {
    let label = "gru_reset_before_step_backward";
    gru_step_backward::run_cell(ctx, Cell::GruResetBefore, label, w, g, active, poison)
}

//! `gru_step.wgsl`'s host side. The kernel shares `lstm_step`'s uniforms, bindings,
//! tilings and recording (`recurrent_step.wgsl`), so this file holds only its
//! single-kernel entry point; the schedule picks it through `Cell::Gru`.

use ndarray::ArrayView2;

use super::gru_reset_before_step::run_cell;
use super::lstm_step::{StepOutput, StepTiling};
use super::Cell;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gru::GruLayerWeights;

/// One dispatch of `gru_step.wgsl` in `tiling` with the training cache on, from host
/// data in [`crate::cpu::gru_step()`]'s layout: `gx` `[B, 3H]` (bias folded as
/// `cpu::gru_step::input_bias(w, true)` folds it), `h` `[B, H]`; rows with
/// `active[b] == false` are past their length. The result's `gates` are `[B, 4H]`
/// (r, z, n, a), its `c` and `c_prev` zeros. With `poison` every output starts as NaN.
pub fn run(
    ctx: &GpuContext,
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    w: &GruLayerWeights,
    active: &[bool],
    tiling: StepTiling,
    poison: bool,
) -> Result<StepOutput> {
    // The body is shared with the reset-before step (`run_cell`, beside its second
    // dispatch's selection); `Cell::Gru` has no second dispatch.
    run_cell(ctx, Cell::Gru, (gx, h), w, active, tiling, poison)
}

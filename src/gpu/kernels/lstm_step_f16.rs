//! `lstm_step` compiled with `weights_f16.wgsl` (the recurrent weights stored as f16,
//! two to a u32; f32 math): the step `GpuLstm::new_f16` runs. Its single-kernel entry
//! point; the CPU twin is `cpu::lstm_step` on the same weights rounded to f16.

use ndarray::ArrayView2;

use super::lstm_step::{run_cell, StepOutput, StepTiling};
use super::Cell;
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::weights::LayerWeights;

/// [`super::lstm_step::run`] with `w`'s recurrent weights uploaded as f16 pairs.
pub fn run(
    ctx: &GpuContext,
    gx: ArrayView2<f32>,
    state: (ArrayView2<f32>, ArrayView2<f32>),
    w: &LayerWeights,
    active: &[bool],
    tiling: StepTiling,
    poison: bool,
) -> Result<StepOutput> {
    run_cell(
        ctx,
        (Cell::LstmF16, tiling),
        gx,
        state,
        w,
        active,
        (poison, false),
    )
}

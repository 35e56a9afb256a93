//! `gru_step.wgsl`'s host side. The kernel shares `lstm_step`'s uniforms, bindings,
//! tilings and recording (`recurrent_step.wgsl`), so this file holds only its
//! single-kernel entry point; the schedule picks it through `Cell::Gru`.

use ndarray::{s, Array2, ArrayView2};

use super::lstm_step::{
    check_fits, dispatch_one, interleave_gate_rows, lens_for, pipeline, unpack, StepOutput,
    StepParams, StepTiling, SINGLE_STEP_T,
};
use super::Cell;
use crate::error::{LstmError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::pack;
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
    let (b, hs) = h.dim();
    for (name, got, want) in [
        ("gx", gx.dim(), (b, 3 * hs)),
        ("w_hh", w.w_hh.dim(), (3 * hs, hs)),
        ("active", (active.len(), hs), (b, hs)),
    ] {
        if got != want || b == 0 || hs == 0 {
            return Err(LstmError::shape(
                format!("gru_step {name}"),
                format!("{want:?}"),
                format!("{got:?}"),
            ));
        }
    }
    let [_, _, w_rec, peep] = pack::gru_layer(w);
    let b_hn = crate::cpu::gru_step::recurrent_n_bias(w, true);
    let tiling = tiling.resolve_for(b, ctx.software_kernels());
    let kernel = pipeline(ctx.kernels()?, Cell::Gru, tiling, hs, b);
    check_fits(ctx, "gru_step", &[4 * b * hs, w_rec.len()], kernel.1)?;
    let params = StepParams {
        batch: b as u32,
        hidden: hs as u32,
        k_rec: hs as u32,
        peephole: 0,
        out_stride: hs as u32,
        out_offset: 0,
        save_cache: 1,
        t_base: SINGLE_STEP_T,
        parity_flip: 0,
        _pad: [0; 3],
    };
    // The kernel's slots: (r, z, b_hn, n) (see gru_step.wgsl).
    let mut gx4 = Array2::zeros((b, 4 * hs));
    gx4.slice_mut(s![.., ..2 * hs])
        .assign(&gx.slice(s![.., ..2 * hs]));
    gx4.slice_mut(s![.., 2 * hs..3 * hs])
        .assign(&b_hn.broadcast((b, hs)).expect("[H] over rows"));
    gx4.slice_mut(s![.., 3 * hs..])
        .assign(&gx.slice(s![.., 2 * hs..]));
    // Half 0 of the ping-pong state is read (h, then a zero c), half 1 written.
    let mut state: Vec<f32> = h.iter().copied().collect();
    state.resize(2 * b * hs, 0.0);
    state.resize(4 * b * hs, if poison { f32::NAN } else { 0.0 });
    let host = [w_rec, peep, interleave_gate_rows(gx4.view()), state];
    let data = ctx.scoped("gru_step", || {
        dispatch_one(ctx, &[kernel], &params, &host, &lens_for(active), poison)
    })?;
    unpack(data, b, hs)
}

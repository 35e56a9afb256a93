//! `gru_reset_before_step_backward.wgsl`'s host side: the BPTT step of a GRU with the
//! reset gate before the recurrent product, two dispatches per step (see the shader's
//! header). The first is `lstm_step_backward`'s form, the second `main_reset_n`, bound
//! alike (`lstm_step_backward::prepare` binds both for the schedule). CPU twin: [`crate::cpu::gru_step_backward()`] with `reset_after = false`.

use ndarray::Array2;

use super::gru_step_backward::GruStepGradsIn;
use super::lstm_step::{block, check_fits, deinterleave_gate_rows, interleave_gate_rows, lens_for};
use super::lstm_step_backward::{dispatch_step, BackwardParams, BACKWARD_ROWS_TILE, BACKWARD_TILE};
use super::Cell;
use crate::error::{LstmError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::pack;
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
    let (b, h) = g.dh.dim();
    let mut dims = vec![
        ("gates", g.gates.dim(), (b, 4 * h)),
        ("h_prev", g.h_prev.dim(), (b, h)),
        ("w_hh", w.w_hh.dim(), (3 * h, h)),
        ("active", (active.len(), h), (b, h)),
    ];
    dims.extend(g.dy.map(|dy| ("dy", dy.dim(), (b, h))));
    if let Some((name, got, want)) = dims
        .into_iter()
        .find(|(_, got, want)| got != want || b * h == 0)
    {
        return Err(LstmError::shape(
            format!("gru_reset_before_step_backward {name}"),
            format!("{want:?}"),
            format!("{got:?}"),
        ));
    }
    let [_, _, w_rec, peep] = pack::gru_layer(w);
    let tile = match ctx.software_kernels() {
        true => BACKWARD_ROWS_TILE,
        false => BACKWARD_TILE,
    };
    let grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    check_fits(
        ctx,
        "gru_reset_before_step_backward",
        &[4 * b * h, w_rec.len()],
        grid,
    )?;
    let params = BackwardParams {
        batch: b as u32,
        hidden: h as u32,
        k_rec: h as u32,
        peephole: 0,
        dy_stride: h as u32,
        dy_offset: 0,
        has_dy: g.dy.is_some() as u32,
        _pad: 0,
    };
    let fill = if poison { f32::NAN } else { 0.0 };
    // Carry half 0 = (dh, a zero dc) is read by the step; the rest is written.
    let mut carry: Vec<f32> = g.dh.iter().copied().collect();
    carry.resize(2 * b * h, 0.0);
    carry.resize(4 * b * h, fill);
    let prev: Vec<f32> = g
        .h_prev
        .rows()
        .into_iter()
        .flat_map(|r| r.into_iter().copied().chain(std::iter::repeat_n(fill, h)))
        .collect();
    let host = [w_rec, peep, interleave_gate_rows(g.gates), prev, carry];
    let dy = g.dy.map(|dy| dy.iter().copied().collect::<Vec<f32>>());
    let data = ctx.scoped("gru_reset_before_step_backward", || {
        let lens = lens_for(active);
        let cell = Cell::GruResetBefore;
        dispatch_step(ctx, cell, &params, &host, dy.as_deref(), &lens, poison)
    })?;
    let [dz, carry]: [Vec<f32>; 2] = data.try_into().map_err(|_| {
        LstmError::value("gru_reset_before_step_backward readback", "not two buffers")
    })?;
    Ok((deinterleave_gate_rows(&dz, b, h), block(&carry, 0, b, h)))
}

//! `gru_step_backward.wgsl`'s host side. The kernel shares `lstm_step_backward`'s
//! uniforms, bindings, forms and recording (`recurrent_step_backward.wgsl`), so this
//! file holds only its single-kernel entry point; the backward schedule picks it
//! through `Cell::Gru`.

use ndarray::{Array2, ArrayView2};

use super::lstm_step::{block, check_fits, deinterleave_gate_rows, interleave_gate_rows, lens_for};
use super::lstm_step_backward::{dispatch_step, BackwardParams, BACKWARD_ROWS_TILE, BACKWARD_TILE};
use super::Cell;
use crate::error::{LstmError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::pack;
use crate::gru::GruLayerWeights;

/// One backward step's operands for [`run`], in [`crate::cpu::gru_step_backward()`]'s
/// layout.
#[derive(Clone, Copy, Debug)]
pub struct GruStepGradsIn<'a> {
    /// The gradient reaching `h_t` from later steps, `[B, H]`.
    pub dh: ArrayView2<'a, f32>,
    /// `∂L/∂y_t` `[B, H]`, added to `dh` on active rows only.
    pub dy: Option<ArrayView2<'a, f32>>,
    /// The forward's gates `[B, 4H]` (r, z, n, a) and `h_{t-1}` `[B, H]`.
    pub gates: ArrayView2<'a, f32>,
    pub h_prev: ArrayView2<'a, f32>,
}

/// The kernel's dispatch sequence for one step (the step, then FINAL, which adds
/// `dz·W_rec`), in the form [`GpuContext::software_kernels`] selects. Returns `dz`
/// `[B, 4H]` in the kernel's slots (∂r_pre, ∂z_pre, ∂a, ∂n_pre) and `dh_{t-1}`; rows
/// with `active[b] == false` are past their length. With `poison` outputs start as NaN.
pub fn run(
    ctx: &GpuContext,
    w: &GruLayerWeights,
    g: &GruStepGradsIn,
    active: &[bool],
    poison: bool,
) -> Result<(Array2<f32>, Array2<f32>)> {
    run_cell(ctx, Cell::Gru, "gru_step_backward", w, g, active, poison)
}

/// [`run`] for either GRU cell (`Cell::GruResetBefore` adds its second dispatch through
/// `dispatch_step`), `label` naming it in errors and scopes.
pub(crate) fn run_cell(
    ctx: &GpuContext,
    cell: Cell,
    label: &'static str,
    w: &GruLayerWeights,
    g: &GruStepGradsIn,
    active: &[bool],
    poison: bool,
) -> Result<(Array2<f32>, Array2<f32>)> {
    let (b, h) = g.dh.dim();
    let mut dims = vec![
        ("gates", g.gates.dim(), (b, 4 * h)),
        ("h_prev", g.h_prev.dim(), (b, h)),
    ];
    dims.push(("w_hh", w.w_hh.dim(), (3 * h, h)));
    dims.push(("active", (active.len(), h), (b, h)));
    dims.extend(g.dy.map(|dy| ("dy", dy.dim(), (b, h))));
    if let Some((name, got, want)) = dims
        .into_iter()
        .find(|(_, got, want)| got != want || b * h == 0)
    {
        return Err(LstmError::shape(
            format!("{label} {name}"),
            format!("{want:?}"),
            format!("{got:?}"),
        ));
    }
    let [_, _, w_rec, peep] = pack::gru_layer(w);
    let tile = if ctx.software_kernels() {
        BACKWARD_ROWS_TILE
    } else {
        BACKWARD_TILE
    };
    let grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    check_fits(ctx, label, &[4 * b * h, w_rec.len()], grid)?;
    let mut params = BackwardParams::new((b, h), h, 0);
    if g.dy.is_some() {
        params = params.with_dy((h, 0));
    }
    let fill = if poison { f32::NAN } else { 0.0 };
    // Carry half 0 = (dh, a zero dc) is read by the step; the rest is written.
    let mut carry: Vec<f32> = g.dh.iter().copied().collect();
    carry.resize(2 * b * h, 0.0);
    carry.resize(4 * b * h, fill);
    // `prev` rows: h_{t-1}, then the c half the step never reads (a reset-before GRU's
    // r ⊙ h, which only its weight gradient reads).
    let prev: Vec<f32> = g
        .h_prev
        .rows()
        .into_iter()
        .flat_map(|r| r.into_iter().copied().chain(std::iter::repeat_n(fill, h)))
        .collect();
    let host = [w_rec, peep, interleave_gate_rows(g.gates), prev, carry];
    let dy = g.dy.map(|dy| dy.iter().copied().collect::<Vec<f32>>());
    let data = ctx.scoped(label, || {
        dispatch_step(
            ctx,
            cell,
            &params,
            &host,
            dy.as_deref(),
            &lens_for(active),
            poison,
        )
    })?;
    let [dz, carry]: [Vec<f32>; 2] = data
        .try_into()
        .map_err(|_| LstmError::value(format!("{label} readback"), "not two buffers"))?;
    Ok((deinterleave_gate_rows(&dz, b, h), block(&carry, 0, b, h)))
}

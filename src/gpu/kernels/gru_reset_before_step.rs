//! `gru_reset_before_step.wgsl`'s host side: a GRU step with the reset gate before the
//! recurrent product in two dispatches (see the shader's header for why). The first is
//! `lstm_step`'s form of the tiling (uniforms, bindings, grid), the second
//! `step_reset_n`, bound alike. CPU twin: [`crate::cpu::gru_step()`] with
//! `reset_after = false`.

use ndarray::{s, Array2, ArrayView2};

use super::lstm_step::{
    check_fits, dispatch_one, interleave_gate_rows, lens_for, pipeline, unpack, StepOutput,
    StepParams, StepTiling, GEMV_TILE,
};
use super::{Cell, Kernels};
use crate::error::{LstmError, Result};
use crate::gpu::buffers::IndexTable;
use crate::gpu::context::GpuContext;
use crate::gpu::pack;
use crate::gru::GruLayerWeights;

/// Units × rows of one `step_reset_n` workgroup: `step_gemv`'s split-K tile (its lanes
/// share a unit's k), so the plan's check of that grid covers this one.
pub(crate) const RESET_N_TILE: (u32, u32) = GEMV_TILE;
/// The same for `step_reset_n_rows` (8 invocations of 4 units × 8 rows).
pub(crate) const RESET_N_ROWS_TILE: (u32, u32) = (32, 8);

/// The second dispatch of a step of `cell` in the form that goes with `tiling`
/// (resolved; the software forms `Units`, `Rows` get `step_reset_n_rows`) and its grid
/// for `h` units × `b` rows: `None` for the cells whose step is one dispatch.
pub(crate) fn reset_n(
    k: &Kernels,
    cell: Cell,
    tiling: StepTiling,
    (h, b): (usize, usize),
) -> Option<(&wgpu::ComputePipeline, (u32, u32))> {
    let [per_unit, rows] = k.step_of(cell).reset_n.as_ref()?;
    let (pipeline, tile) = match tiling {
        StepTiling::Units | StepTiling::Rows | StepTiling::Quads => (rows, RESET_N_ROWS_TILE),
        StepTiling::Auto | StepTiling::Gemv | StepTiling::Tiled => (per_unit, RESET_N_TILE),
    };
    let grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    Some((pipeline, grid))
}

/// Records the chunk-local steps `ts` (in order), each as `first` then `second`, both
/// bound by `bg` at the step's dynamic offset, over `directions` (like `lstm_step::record`).
pub(crate) fn record(
    pass: &mut wgpu::ComputePass,
    [first, second]: [(&wgpu::ComputePipeline, (u32, u32)); 2],
    directions: u32,
    bg: &wgpu::BindGroup,
    index: &IndexTable,
    ts: impl Iterator<Item = usize>,
) {
    for t in ts {
        pass.set_bind_group(0, bg, &[index.offset(t)]);
        for (pipeline, grid) in [first, second] {
            pass.set_pipeline(pipeline);
            pass.dispatch_workgroups(grid.0, grid.1, directions);
        }
    }
}

/// One step of `gru_reset_before_step.wgsl` (both dispatches) in `tiling` with the
/// training cache on, from host data in [`crate::cpu::gru_step()`]'s layout: `gx`
/// `[B, 3H]` with all biases folded (`cpu::gru_step::input_bias(w, false)`), `h`
/// `[B, H]`; rows with `active[b] == false` are past their length. The result's `gates`
/// are `[B, 4H]` (r, z, n, 0), `c_prev` is the cached `r ⊙ h_{t-1}`, `c` zeros. With
/// `poison` every output starts as NaN.
pub fn run(
    ctx: &GpuContext,
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    w: &GruLayerWeights,
    active: &[bool],
    tiling: StepTiling,
    poison: bool,
) -> Result<StepOutput> {
    run_cell(
        ctx,
        Cell::GruResetBefore,
        (gx, h),
        w,
        active,
        tiling,
        poison,
    )
}

/// [`run`] for either GRU cell, from host data as that cell's `run` takes it: `Cell::Gru`
/// (`gru_step::run`, one dispatch, `gx` with b_hn apart, in the kernel's third slot) or
/// `Cell::GruResetBefore` (both dispatches, every bias folded into `gx`). It lives here,
/// with [`reset_n`], which picks the second dispatch.
pub(crate) fn run_cell(
    ctx: &GpuContext,
    cell: Cell,
    (gx, h): (ArrayView2<f32>, ArrayView2<f32>),
    w: &GruLayerWeights,
    active: &[bool],
    tiling: StepTiling,
    poison: bool,
) -> Result<StepOutput> {
    let label = match cell {
        Cell::GruResetBefore => "gru_reset_before_step",
        Cell::Gru | Cell::Lstm | Cell::LstmF16 => "gru_step",
    };
    let (b, hs) = h.dim();
    for (name, got, want) in [
        ("gx", gx.dim(), (b, 3 * hs)),
        ("w_hh", w.w_hh.dim(), (3 * hs, hs)),
        ("active", (active.len(), hs), (b, hs)),
    ] {
        if got != want || b == 0 || hs == 0 {
            return Err(LstmError::shape(
                format!("{label} {name}"),
                format!("{want:?}"),
                format!("{got:?}"),
            ));
        }
    }
    let [_, _, w_rec, peep] = pack::gru_layer(w);
    let tiling = tiling.resolve_for((b, hs), ctx.kernel_forms());
    let k = ctx.kernels()?;
    let mut kernels = vec![pipeline(k, cell, tiling, hs, b)];
    kernels.extend(reset_n(k, cell, tiling, (hs, b)));
    if cell == Cell::GruResetBefore && kernels.len() != 2 {
        return Err(LstmError::value(label, "no step_reset_n"));
    }
    for kernel in &kernels {
        check_fits(ctx, label, &[4 * b * hs, w_rec.len()], kernel.1)?;
    }
    let params = StepParams::single_step(b, hs, hs, 0);
    let fill = if poison { f32::NAN } else { 0.0 };
    // Half 0 of the ping-pong state is read (h, then a c half: zero for `gru_step`, which
    // never reads it; `fill` for the reset-before step's dispatch 1, which writes r ⊙ h
    // there before dispatch 2 reads it), half 1 written.
    let mut state: Vec<f32> = h.iter().copied().collect();
    let c_read = if cell == Cell::GruResetBefore {
        fill
    } else {
        0.0
    };
    state.resize(2 * b * hs, c_read);
    state.resize(4 * b * hs, fill);
    let host = [
        w_rec,
        peep,
        interleave_gate_rows(gx_slots(gx, w, cell).view()),
        state,
    ];
    let lens = lens_for(active);
    let run = || dispatch_one(ctx, &kernels, &params, &host, &lens, (poison, false));
    let data = ctx.scoped(label, run)?;
    unpack(data, b, hs)
}

/// `gx` `[B, 3H]` in the kernel's slots (r, z, b_hn, n) `[B, 4H]`: `gru_step` adds b_hn
/// to the n product (`recurrent_n_bias`); the reset-before twin's gx has it folded into
/// n already, so its slot is 0.
fn gx_slots(gx: ArrayView2<f32>, w: &GruLayerWeights, cell: Cell) -> Array2<f32> {
    let (b, hs) = (gx.nrows(), gx.ncols() / 3);
    let mut gx4 = Array2::zeros((b, 4 * hs));
    gx4.slice_mut(s![.., ..2 * hs])
        .assign(&gx.slice(s![.., ..2 * hs]));
    if cell == Cell::Gru {
        let b_hn = crate::cpu::gru_step::recurrent_n_bias(w, true);
        gx4.slice_mut(s![.., 2 * hs..3 * hs])
            .assign(&b_hn.broadcast((b, hs)).expect("[H] over rows"));
    }
    gx4.slice_mut(s![.., 3 * hs..])
        .assign(&gx.slice(s![.., 2 * hs..]));
    gx4
}

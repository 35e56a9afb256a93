//! `shaders/lstm_step.wgsl`: one fused dispatch per time step (the four gate products,
//! bias, peepholes, activations and the `c`/`h` update), in five tilings. CPU twin:
//! [`crate::cpu::lstm_step()`].

use bytemuck::{Pod, Zeroable};
use ndarray::ArrayView2;

use super::{Cell, Kernels};
use crate::error::{LstmError, Result};
use crate::gpu::buffers::{
    bind_group, new_storage, storage_init, storage_u32, uniform, IndexTable,
};
use crate::gpu::context::GpuContext;
use crate::gpu::pack;
use crate::weights::{LayerWeights, PeepholeWeights};

/// Mirrors `StepParams` in `shaders/lstm_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct StepParams {
    pub batch: u32,
    pub hidden: u32,
    pub k_rec: u32,
    pub peephole: u32,
    pub out_stride: u32,
    pub out_offset: u32,
    pub save_cache: u32,
    /// The chunk's first time step.
    pub t_base: u32,
    /// Flips the table's parity: the chunk's direction and position (see [`parity_flip`]).
    pub parity_flip: u32,
    /// 1, or 2 when one dispatch steps both directions of a bidirectional layer (grid
    /// z = 2; `gx` then interleaves them, `[Tc][B][2][H]` vec4).
    pub gx_dirs: u32,
    /// The chunk's step count (the reverse direction of such a dispatch starts at its end).
    pub chunk_len: u32,
    /// Entries per direction block of the training cache when both directions share a
    /// dispatch (`gates` `[2][stride]` vec4, `prev` `[2][2·stride]`); 0 otherwise.
    pub cache_stride: u32,
}

/// Mirrors `StepIndex` in `shaders/lstm_step.wgsl`; one per step of a chunk at a dynamic offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct StepIndex {
    pub t_local: u32,
    pub parity: u32,
    /// 1: a direction's first step from an all-zero state, which skips the recurrent
    /// products (each would be +0, as the accumulators are: the same bits).
    pub from_zero: u32,
    pub _pad: u32,
}

pub use super::host_layout::StepOutput;
pub(crate) use super::host_layout::{
    block, deinterleave_gate_rows, interleave_gate_rows, prev_rows, unpack,
};
pub use super::step_tiling::StepTiling;
pub(crate) use super::step_tiling::{
    workgroup_invocations, GEMV_TILE, ROWS_TILE, TILED_TILE, UNITS_TILE,
};

/// The index table of chunks of up to `chunk_len` steps: entry `s` is local step `s`
/// with parity `s % 2`. Every chunk of every direction shares it (see [`parity_flip`]).
/// Two more entries are the steps a direction starts at, taken from a zero state
/// ([`from_zero_entry`]): local step 0 (forward), and `reverse_start`, the last step
/// of the last chunk (reverse). Two, not a copy of the table: a one-chunk plan may be
/// as long as the device's buffer size allows the table to be.
pub(crate) fn index_table(
    ctx: &GpuContext,
    chunk_len: usize,
    reverse_start: usize,
) -> Result<IndexTable> {
    let entry = |s: usize, from_zero: u32| StepIndex {
        t_local: s as u32,
        parity: (s % 2) as u32,
        from_zero,
        _pad: 0,
    };
    let plain = (0..chunk_len).map(|s| entry(s, 0));
    let starts = [entry(0, 1), entry(reverse_start, 1)];
    let entries: Vec<StepIndex> = plain.chain(starts).collect();
    IndexTable::new(ctx, "step index", &entries)
}

/// The entry of [`index_table`] for a direction's first step `s` (0, or the table's
/// `reverse_start`) taken from an all-zero state.
pub(crate) fn from_zero_entry(chunk_len: usize, s: usize) -> usize {
    chunk_len + usize::from(s != 0)
}

impl StepParams {
    /// The uniforms of the single-kernel entry points' one step ([`run`] and the GRU's):
    /// one direction, at [`SINGLE_STEP_T`], training cache on.
    pub(crate) fn single_step(b: usize, h: usize, k_rec: usize, peephole: u32) -> StepParams {
        StepParams {
            batch: b as u32,
            hidden: h as u32,
            k_rec: k_rec as u32,
            peephole,
            out_stride: h as u32,
            out_offset: 0,
            save_cache: 1,
            t_base: SINGLE_STEP_T,
            parity_flip: 0,
            gx_dirs: 1,
            chunk_len: 1,
            cache_stride: 0,
        }
    }
}

/// The parity flip of the chunk starting at `base` of a `t`-step sequence. A direction's
/// step count `s` (0 at its first step) picks the state half it reads, `s % 2`: forward
/// `s = base + t_local`, reverse `s = t − 1 − base − t_local`; both are
/// `t_local % 2` flipped by this.
pub(crate) fn parity_flip(t: usize, base: usize, reverse: bool) -> u32 {
    let first = if reverse { t - 1 - base } else { base };
    (first % 2) as u32
}

/// The buffers one layer-direction-chunk's steps read and write (bindings 0, 2–9).
pub(crate) struct StepBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub w_rec: &'a wgpu::Buffer,
    pub peep: &'a wgpu::Buffer,
    pub gx: &'a wgpu::Buffer,
    pub lens: &'a wgpu::Buffer,
    /// `[2][2][B][H]`: (h, c) ping-pong halves.
    pub state: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    /// Training cache, or the context's dummy.
    pub gates: &'a wgpu::Buffer,
    pub prev: &'a wgpu::Buffer,
}

/// The pipeline of `tiling` (resolved) and its grid for `h` units × `b` rows.
pub(crate) fn pipeline(
    k: &Kernels,
    cell: Cell,
    tiling: StepTiling,
    h: usize,
    b: usize,
) -> (&wgpu::ComputePipeline, (u32, u32)) {
    let forms = k.step_of(cell);
    let (pipeline, tile) = match tiling {
        StepTiling::Quads => (forms.quads.for_batch(b), super::step_quads::quad_tile(b)),
        StepTiling::Tiled => (&forms.tiled, TILED_TILE),
        StepTiling::Units => (&forms.units, UNITS_TILE),
        StepTiling::Rows => (&forms.rows, ROWS_TILE),
        StepTiling::Gemv | StepTiling::Auto => (&forms.gemv, GEMV_TILE),
    };
    (
        pipeline,
        ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1)),
    )
}

/// The bind group of one layer-direction-chunk's steps (one per chunk, any number of steps).
pub(crate) fn bind(
    ctx: &GpuContext,
    index: &IndexTable,
    bufs: &StepBuffers,
) -> Result<wgpu::BindGroup> {
    let k = ctx.kernels()?;
    Ok(bind_group(
        ctx,
        &k.step_layout,
        &[
            bufs.params.as_entire_binding(),
            index.binding(std::mem::size_of::<StepIndex>() as u64),
            bufs.w_rec.as_entire_binding(),
            bufs.peep.as_entire_binding(),
            bufs.gx.as_entire_binding(),
            bufs.lens.as_entire_binding(),
            bufs.state.as_entire_binding(),
            bufs.out.as_entire_binding(),
            bufs.gates.as_entire_binding(),
            bufs.prev.as_entire_binding(),
        ],
    ))
}

/// Records the chunk-local steps `ts` (in order), bound by `bg` (see [`bind`]), each one
/// dispatch of `grid` for each of `directions` (1, or 2 when the dispatch steps both
/// directions of a layer: its grid z).
pub(crate) fn record(
    pass: &mut wgpu::ComputePass,
    (pipeline, grid): (&wgpu::ComputePipeline, (u32, u32)),
    directions: u32,
    bg: &wgpu::BindGroup,
    index: &IndexTable,
    ts: impl Iterator<Item = usize>,
) {
    pass.set_pipeline(pipeline);
    for t in ts {
        pass.set_bind_group(0, bg, &[index.offset(t)]);
        pass.dispatch_workgroups(grid.0, grid.1, directions);
    }
}

/// The time step [`run`] and `lstm_step_backward::run` dispatch at: not 0, so that the
/// `t < lens[b]` test sees lengths on both sides of it (see [`lens_for`]).
pub(crate) const SINGLE_STEP_T: u32 = 2;

/// Sequence lengths that make row `b` live at [`SINGLE_STEP_T`] exactly when `active[b]`,
/// varied per row (0..=2 inactive, 3..=5 active).
pub(crate) fn lens_for(active: &[bool]) -> Vec<u32> {
    let t = SINGLE_STEP_T;
    (0..active.len() as u32)
        .map(|b| {
            if active[b as usize] {
                t + 1 + b % 3
            } else {
                b % (t + 1)
            }
        })
        .collect()
}

/// The shaders' peephole mode code: 0 None, 1 Diagonal, 2 Full.
pub(crate) fn peephole_code(w: &LayerWeights) -> u32 {
    match w.peephole {
        PeepholeWeights::None => 0,
        PeepholeWeights::Diagonal(_) => 1,
        PeepholeWeights::Full(_) => 2,
    }
}

/// Fails with a device-limit error when a buffer of `floats` or the grid exceeds the device.
pub(crate) fn check_fits(
    ctx: &GpuContext,
    what: &str,
    floats: &[usize],
    grid: (u32, u32),
) -> Result<()> {
    let groups = ctx.limits().max_compute_workgroups_per_dimension;
    let limit = ctx.max_binding_bytes();
    if floats.iter().any(|&f| 4 * f as u64 > limit) || grid.0 > groups || grid.1 > groups {
        return Err(LstmError::DeviceLimit(format!(
            "{what}: buffers of {floats:?} floats on a {grid:?} grid exceed the device's limits"
        )));
    }
    Ok(())
}

/// The single-kernel entry point of `lstm_step.wgsl`, used by `tests/kernels.rs` and
/// usable on its own: one dispatch of `tiling` (resolved for this batch and
/// [`GpuContext::software_kernels`]) with the training cache on, from host data in the
/// layout of [`crate::cpu::lstm_step()`] (`gx` `[B, 4H]` gate blocks, bias included;
/// `state` = `(h, c)` `[B, H]`; rows with `active[b] == false` are past their
/// sequence's length). With `poison` every output starts as NaN.
pub fn run(
    ctx: &GpuContext,
    gx: ArrayView2<f32>,
    (h, c): (ArrayView2<f32>, ArrayView2<f32>),
    w: &LayerWeights,
    active: &[bool],
    tiling: StepTiling,
    poison: bool,
) -> Result<StepOutput> {
    run_cell(
        ctx,
        (Cell::Lstm, tiling),
        gx,
        (h, c),
        w,
        active,
        (poison, false),
    )
}

/// [`run`] for `Cell::Lstm` or `Cell::LstmF16` (`lstm_step_f16`: the recurrent weights
/// uploaded as f16 pairs, `pack::f16_pairs`); with `from_zero` the step takes the index
/// entry of a first step from a zero state (whatever `h` and `c` hold).
pub(crate) fn run_cell(
    ctx: &GpuContext,
    (cell, tiling): (Cell, StepTiling),
    gx: ArrayView2<f32>,
    (h, c): (ArrayView2<f32>, ArrayView2<f32>),
    w: &LayerWeights,
    active: &[bool],
    (poison, from_zero): (bool, bool),
) -> Result<StepOutput> {
    let states = [("h", h.dim()), ("c", c.dim())];
    crate::cpu::reference::check_step(w, &[("gx", gx.dim())], &states, active)?;
    if cell == Cell::LstmF16 && !ctx.has_f16_unpack() {
        return Err(LstmError::DeviceLimit(
            "this adapter cannot unpack f16".into(),
        ));
    }
    let (b, hs) = h.dim();
    let w_rec = pack::recurrent_matrix(w);
    let tiling = tiling.resolve_for((b, hs), ctx.kernel_forms());
    let kernel = pipeline(ctx.kernels()?, cell, tiling, hs, b);
    check_fits(ctx, "lstm_step", &[4 * b * hs, w_rec.len()], kernel.1)?;
    let params = StepParams::single_step(b, hs, w_rec.len() / (4 * hs), peephole_code(w));
    // Half 0 of the ping-pong state is read, half 1 written.
    let mut state: Vec<f32> = h.iter().chain(c.iter()).copied().collect();
    state.resize(4 * b * hs, if poison { f32::NAN } else { 0.0 });
    // `dispatch_one` uploads f32 slices; f16 pairs travel as their bit patterns.
    let w_host = match cell {
        Cell::LstmF16 => pack::f16_pairs(&w_rec)
            .into_iter()
            .map(f32::from_bits)
            .collect(),
        _ => w_rec,
    };
    let host = [
        w_host,
        pack::peephole_vec(w),
        interleave_gate_rows(gx),
        state,
    ];
    let data = ctx.scoped("lstm_step", || {
        dispatch_one(
            ctx,
            &[kernel],
            &params,
            &host,
            &lens_for(active),
            (poison, from_zero),
        )
    })?;
    unpack(data, b, hs)
}

/// [`run`]'s buffers (`host`: w_rec, peep, gx, state in the kernel's layout), its
/// dispatches of one step (in order) at [`SINGLE_STEP_T`] and the readback of state,
/// y, gates and prev (`from_zero`: see [`run_cell`]).
pub(crate) fn dispatch_one(
    ctx: &GpuContext,
    kernels: &[(&wgpu::ComputePipeline, (u32, u32))],
    params: &StepParams,
    host: &[Vec<f32>; 4],
    lens: &[u32],
    (poison, from_zero): (bool, bool),
) -> Result<Vec<Vec<f32>>> {
    let (b, hs) = (params.batch as usize, params.hidden as usize);
    let entry = StepIndex {
        t_local: 0,
        parity: 0,
        from_zero: from_zero as u32,
        _pad: 0,
    };
    let index = IndexTable::new(ctx, "step index", &[entry])?;
    let new = |label, floats| new_storage(ctx, label, floats, poison);
    let u = [
        uniform(ctx, "step params", params),
        storage_init(ctx, "w_rec", &host[0]),
        storage_init(ctx, "peephole", &host[1]),
        storage_init(ctx, "gx", &host[2]),
        storage_u32(ctx, "seq lens", lens),
        storage_init(ctx, "state", &host[3]),
        new("y", b * hs),
        new("gates", 4 * b * hs),
        new("prev", 2 * b * hs),
    ];
    let [params, w_rec, peep, gx, lens, state, out, gates, prev] = &u;
    let bufs = StepBuffers {
        params,
        w_rec,
        peep,
        gx,
        lens,
        state,
        out,
        gates,
        prev,
    };
    let bg = bind(ctx, &index, &bufs)?;
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let mut pass = encoder.begin_compute_pass(&Default::default());
    for &kernel in kernels {
        record(&mut pass, kernel, 1, &bg, &index, 0..1);
    }
    drop(pass);
    let sources = [state, out, gates, prev].map(|buf| (buf, buf.size()));
    ctx.submit_and_read(encoder, &sources)
}

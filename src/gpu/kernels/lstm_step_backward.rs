//! `shaders/lstm_step_backward.wgsl`: one fused BPTT step per dispatch (gate
//! derivatives, `dh_{t-1} = dz·W_hh`, `dc_{t-1}`), plus a final dispatch that writes
//! `(dh_0, dc_0)`. CPU twin: [`crate::cpu::lstm_step_backward()`].

use bytemuck::{Pod, Zeroable};
use ndarray::{Array2, ArrayView2};

use super::lstm_step::{
    block, check_fits, deinterleave_gate_rows, interleave_gate_rows, lens_for, peephole_code,
    prev_rows, SINGLE_STEP_T,
};
use super::step_quads::{quad_tile, quads_fit};
use super::{Cell, Dispatch};
use crate::cpu::reference::check_step;
use crate::error::{LstmError, Result};
use crate::gpu::buffers::{
    bind_group, new_storage, storage_init, storage_u32, uniform, IndexTable,
};
use crate::gpu::context::GpuContext;
use crate::gpu::pack;
use crate::gpu::plan::ChunkPlan;
use crate::weights::LayerWeights;

/// Mirrors `BackwardParams` in `shaders/recurrent_step_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BackwardParams {
    pub batch: u32,
    pub hidden: u32,
    pub k_rec: u32,
    pub peephole: u32,
    pub dy_stride: u32,
    pub dy_offset: u32,
    pub has_dy: u32,
    /// Both directions per dispatch: `T`, and the direction blocks of the cache and `dz`.
    pub steps: u32,
    pub cache_stride: u32,
    pub dz_stride: u32,
    pub _pad: [u32; 2],
}

impl BackwardParams {
    /// One layer-direction per dispatch, `b` rows of `h` units, `W_rec` `[4H, k_rec]`,
    /// without `dy`.
    pub fn new((b, h): (usize, usize), k_rec: usize, peephole: u32) -> BackwardParams {
        BackwardParams {
            batch: b as u32,
            hidden: h as u32,
            k_rec: k_rec as u32,
            peephole,
            dy_stride: h as u32,
            dy_offset: 0,
            has_dy: 0,
            steps: 1,
            cache_stride: 0,
            dz_stride: 0,
            _pad: [0; 2],
        }
    }

    /// Adds `dy` `[T][B][stride]`, this direction's columns from `offset` (direction 1
    /// of a dispatch of both reads `H` further on).
    pub fn with_dy(self, (stride, offset): (usize, usize)) -> BackwardParams {
        BackwardParams {
            dy_stride: stride as u32,
            dy_offset: offset as u32,
            has_dy: 1,
            ..self
        }
    }
}

/// Mirrors `BackwardIndex` in `shaders/recurrent_step_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BackwardIndex {
    pub t_global: u32,
    pub t_local: u32,
    pub t_prev: u32,
    pub bits: u32,
}

impl BackwardIndex {
    pub const PARITY: u32 = 1;
    pub const FIRST: u32 = 2;
    pub const FINAL: u32 = 4;
}

/// Hidden units × batch rows of one `lstm_step_backward` workgroup (`main`).
pub(crate) const BACKWARD_TILE: (u32, u32) = (16, 16);
/// The same for its software-adapter form `main_rows`.
pub(crate) const BACKWARD_ROWS_TILE: (u32, u32) = (32, 8);
/// Invocations (units) of one `main_reset_n` workgroup of a two-dispatch cell
/// (`gru_reset_before_step_backward.wgsl`'s `@workgroup_size`).
pub(crate) const RESET_N_GROUP: u32 = 64;

/// The backward index table of a sequence split as `plan`: per direction `d`, entries
/// `d·(T+1) + s` for the steps `s = 0..T` in the reverse of the forward's order, then
/// the FINAL entry `s = T`. Rows (`t_local`, `t_prev`) are local to the step's chunk;
/// a step whose predecessor sits in another chunk reads it from the boundary row
/// `plan.len` of `dz`, where the schedule copies it (see [`boundary_row`]).
pub(crate) fn index_table(ctx: &GpuContext, plan: &ChunkPlan) -> Result<IndexTable> {
    let (t_len, len) = (plan.t, plan.len);
    let mut entries = Vec::with_capacity(2 * (t_len + 1));
    for d in 0..2 {
        let order = |s: usize| if d == 0 { t_len - 1 - s } else { s };
        for s in 0..=t_len {
            let mut bits = 0;
            if s % 2 == 1 {
                bits |= BackwardIndex::PARITY;
            }
            if s == 0 {
                bits |= BackwardIndex::FIRST;
            }
            if s == t_len {
                bits |= BackwardIndex::FINAL;
            }
            let t = if s < t_len { order(s) } else { order(s - 1) };
            let t_prev = match s {
                0 => 0,
                _ if s < t_len && order(s - 1) / len != t / len => len,
                _ => order(s - 1) % len,
            };
            entries.push(BackwardIndex {
                t_global: t as u32,
                t_local: (t % len) as u32,
                t_prev: t_prev as u32,
                bits,
            });
        }
    }
    IndexTable::new(ctx, "backward index", &entries)
}

/// For the chunk `c` of direction `d` (not the first one processed): the local row of
/// `dz` that holds its predecessor step's dz when the chunk starts, to be copied to the
/// boundary row `plan.len`. Backward runs the forward direction's chunks last to
/// first (its predecessor is row 0 of chunk c + 1), the reverse direction's first to
/// last (the last row of chunk c − 1, a full chunk).
pub(crate) fn boundary_row(plan: &ChunkPlan, d: usize) -> usize {
    if d == 0 {
        0
    } else {
        plan.len - 1
    }
}

/// What one layer-direction's backward steps read and write (bindings 0, 2–9); with
/// both directions per dispatch, each in direction blocks (`lstm_step_backward.wgsl`).
pub(crate) struct BackwardBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub w_rec: &'a wgpu::Buffer,
    pub peep: &'a wgpu::Buffer,
    pub gates: &'a wgpu::Buffer,
    pub prev: &'a wgpu::Buffer,
    pub lens: &'a wgpu::Buffer,
    /// `∂L/∂y`, or the context's dummy.
    pub dy: &'a wgpu::Buffer,
    pub dz: &'a wgpu::Buffer,
    /// `[2][2][B][H]`: (dh, dc) ping-pong halves.
    pub carry: &'a wgpu::Buffer,
}

/// One layer-direction's backward steps, bound (`h` units, `b` rows), or with
/// `directions` = 2 both directions of a bidirectional layer (grid z = 2, `bufs` in
/// direction blocks); recorded per step with the index table's dynamic offsets by
/// [`record_steps`].
pub(crate) fn prepare(
    ctx: &GpuContext,
    cell: Cell,
    index: &IndexTable,
    bufs: &BackwardBuffers,
    (h, b, directions): (usize, usize, u32),
) -> Result<BoundSteps> {
    let k = ctx.kernels()?;
    // Software adapters get the barrier-free form (see lstm_step_backward.wgsl).
    let forms = k.backward_of(cell);
    let (pipeline, tile) = match ctx.software_kernels() {
        true if quads_fit(h) && ctx.quad_forms() => (forms.quads.for_batch(b), quad_tile(b)),
        true => (&forms.rows, BACKWARD_ROWS_TILE),
        false => (&forms.main, BACKWARD_TILE),
    };
    let resources = [
        bufs.params.as_entire_binding(),
        index.binding(std::mem::size_of::<BackwardIndex>() as u64),
        bufs.w_rec.as_entire_binding(),
        bufs.peep.as_entire_binding(),
        bufs.gates.as_entire_binding(),
        bufs.prev.as_entire_binding(),
        bufs.lens.as_entire_binding(),
        bufs.dy.as_entire_binding(),
        bufs.dz.as_entire_binding(),
        bufs.carry.as_entire_binding(),
    ];
    let first = Dispatch {
        pipeline: pipeline.clone(),
        bind_group: bind_group(ctx, &k.backward_layout, &resources),
        grid: ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1)),
    };
    // A two-dispatch cell's second step (`gru_reset_before_step_backward.wgsl`'s
    // `main_reset_n`: one invocation per unit and row), bound alike.
    let reset_n = match &forms.reset_n {
        None => None,
        Some(pipeline) => {
            let grid = ((h as u32).div_ceil(RESET_N_GROUP), b as u32);
            check_fits(ctx, "gru_reset_before_step_backward", &[], grid)?;
            Some(Dispatch {
                pipeline: pipeline.clone(),
                bind_group: first.bind_group.clone(),
                grid,
            })
        }
    };
    Ok(BoundSteps {
        first,
        reset_n,
        directions,
    })
}

/// One layer-direction's backward steps (or both directions'), bound: the step kernel,
/// and for a cell whose step is two dispatches (`Cell::GruResetBefore`) the second,
/// bound alike.
pub(crate) struct BoundSteps {
    pub first: Dispatch,
    pub reset_n: Option<Dispatch>,
    /// The grid's z: directions per dispatch.
    pub directions: u32,
}

/// Records the steps `s` (in backward order; `s = T` is FINAL) of direction `d` of a
/// `t_len`-step sequence (`d` = 0 where both directions are bound: direction 1 takes
/// direction 0's entries mirrored in time).
pub(crate) fn record_steps(
    pass: &mut wgpu::ComputePass,
    bound: &BoundSteps,
    index: &IndexTable,
    (d, t_len): (usize, usize),
    steps: std::ops::Range<usize>,
) {
    let (first, z) = (&bound.first, bound.directions);
    let offset = |s: usize| [index.offset(d * (t_len + 1) + s)];
    // The one-dispatch cells keep their loop free of pipeline switches.
    let Some(second) = &bound.reset_n else {
        pass.set_pipeline(&first.pipeline);
        for s in steps {
            pass.set_bind_group(0, &first.bind_group, &offset(s));
            pass.dispatch_workgroups(first.grid.0, first.grid.1, z);
        }
        return;
    };
    for s in steps {
        pass.set_bind_group(0, &first.bind_group, &offset(s));
        for one in [first, second] {
            pass.set_pipeline(&one.pipeline);
            pass.dispatch_workgroups(one.grid.0, one.grid.1, z);
        }
    }
}

/// One backward step's operands for [`run`], in the layout of
/// [`crate::cpu::lstm_step_backward()`].
#[derive(Clone, Copy, Debug)]
pub struct StepGrads<'a> {
    /// The gradients reaching `h_t` and `c_t` from later steps, `[B, H]`.
    pub dh: ArrayView2<'a, f32>,
    pub dc: ArrayView2<'a, f32>,
    /// `∂L/∂y_t` `[B, H]` (the kernel's `dy` binding): the kernel adds it to `dh` on
    /// active rows only, so the twin's `dh` is `dh + dy` there.
    pub dy: Option<ArrayView2<'a, f32>>,
    /// The forward's gate activations `[B, 4H]` (i, f, g, o blocks) and `c_{t-1}` `[B, H]`.
    pub gates: ArrayView2<'a, f32>,
    pub c_prev: ArrayView2<'a, f32>,
}

/// The single-kernel entry point of `lstm_step_backward.wgsl`, used by
/// `tests/kernels.rs` and usable on its own: the kernel's dispatch sequence for
/// one step (the step, then the FINAL dispatch that adds `dz·W_rec`), in the form
/// [`GpuContext::software_kernels`] selects. Returns `(dz [B, 4H], dh_{t-1}, dc_{t-1})`
/// like the twin; rows with `active[b] == false` are past their sequence's length.
/// With `poison` the outputs (and `prev`'s unused `h_{t-1}` half) start as NaN.
pub fn run(
    ctx: &GpuContext,
    w: &LayerWeights,
    g: &StepGrads,
    active: &[bool],
    poison: bool,
) -> Result<(Array2<f32>, Array2<f32>, Array2<f32>)> {
    let mut states = vec![
        ("dh", g.dh.dim()),
        ("dc", g.dc.dim()),
        ("c_prev", g.c_prev.dim()),
    ];
    states.extend(g.dy.map(|dy| ("dy", dy.dim())));
    check_step(w, &[("gates", g.gates.dim())], &states, active)?;
    let (b, h) = g.dh.dim();
    let w_rec = pack::recurrent_matrix(w);
    let tile = if ctx.software_kernels() {
        BACKWARD_ROWS_TILE
    } else {
        BACKWARD_TILE
    };
    let grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    check_fits(ctx, "lstm_step_backward", &[4 * b * h, w_rec.len()], grid)?;
    let mut params = BackwardParams::new((b, h), w_rec.len() / (4 * h), peephole_code(w));
    if g.dy.is_some() {
        params = params.with_dy((h, 0));
    }
    let fill = if poison { f32::NAN } else { 0.0 };
    // Half 0 of the carry (dh, dc) is read by the step, which writes half 1; FINAL
    // reads half 1 and writes half 0.
    let mut carry: Vec<f32> = g.dh.iter().chain(g.dc.iter()).copied().collect();
    carry.resize(4 * b * h, fill);
    let host = [
        w_rec,
        pack::peephole_vec(w),
        interleave_gate_rows(g.gates),
        prev_rows(g.c_prev, fill),
        carry,
    ];
    let dy = g.dy.map(|dy| dy.iter().copied().collect::<Vec<f32>>());
    let data = ctx.scoped("lstm_step_backward", || {
        dispatch_step(
            ctx,
            Cell::Lstm,
            &params,
            &host,
            dy.as_deref(),
            &lens_for(active),
            poison,
        )
    })?;
    let [dz, carry]: [Vec<f32>; 2] = data
        .try_into()
        .map_err(|_| LstmError::value("lstm_step_backward readback", "not two buffers"))?;
    let dz = deinterleave_gate_rows(&dz, b, h);
    Ok((dz, block(&carry, 0, b, h), block(&carry, b * h, b, h)))
}

/// [`run`]'s buffers (`host`: w_rec, peep, gates, prev, carry in the kernel's layout), the
/// step at [`SINGLE_STEP_T`] then FINAL, and the readback of dz and carry.
pub(crate) fn dispatch_step(
    ctx: &GpuContext,
    cell: Cell,
    params: &BackwardParams,
    host: &[Vec<f32>; 5],
    dy: Option<&[f32]>,
    lens: &[u32],
    poison: bool,
) -> Result<Vec<Vec<f32>>> {
    let (b, h) = (params.batch as usize, params.hidden as usize);
    let entry = |t_global, bits| BackwardIndex {
        t_global,
        t_local: 0,
        t_prev: 0,
        bits,
    };
    let last = BackwardIndex::PARITY | BackwardIndex::FINAL;
    let entries = [entry(SINGLE_STEP_T, BackwardIndex::FIRST), entry(0, last)];
    let index = IndexTable::new(ctx, "backward index", &entries)?;
    let dy = dy.map(|dy| storage_init(ctx, "dy", dy));
    let u = [
        uniform(ctx, "backward params", params),
        storage_init(ctx, "w_rec", &host[0]),
        storage_init(ctx, "peephole", &host[1]),
        storage_init(ctx, "gates", &host[2]),
        storage_init(ctx, "prev", &host[3]),
        storage_u32(ctx, "seq lens", lens),
        new_storage(ctx, "dz", 4 * b * h, poison),
        storage_init(ctx, "carry", &host[4]),
    ];
    let [params, w_rec, peep, gates, prev, lens, dz, carry] = &u;
    let dy = dy.as_ref().unwrap_or(ctx.dummy());
    let bufs = BackwardBuffers {
        params,
        w_rec,
        peep,
        gates,
        prev,
        lens,
        dy,
        dz,
        carry,
    };
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let mut pass = encoder.begin_compute_pass(&Default::default());
    record_steps(
        &mut pass,
        &prepare(ctx, cell, &index, &bufs, (h, b, 1))?,
        &index,
        (0, 1),
        0..2,
    );
    drop(pass);
    ctx.submit_and_read(encoder, &[(dz, dz.size()), (carry, carry.size())])
}

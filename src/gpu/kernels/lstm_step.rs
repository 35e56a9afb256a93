//! `shaders/lstm_step.wgsl`: one fused dispatch per time step (the four gate products,
//! bias, peepholes, activations and the `c`/`h` update), in four tilings. CPU twin:
//! [`crate::cpu::lstm_step`].

use bytemuck::{Pod, Zeroable};

use super::Kernels;
use crate::error::Result;
use crate::gpu::buffers::{bind_group, IndexTable};
use crate::gpu::context::GpuContext;

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
    pub _pad: u32,
}

/// Mirrors `StepIndex` in `shaders/lstm_step.wgsl`; one per time step at a dynamic offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct StepIndex {
    pub t_global: u32,
    pub t_local: u32,
    pub parity: u32,
    pub _pad: u32,
}

/// Hidden units × batch rows of one `step_gemv` workgroup.
pub(crate) const GEMV_TILE: (u32, u32) = (2, 4);
/// Hidden units × batch rows of one `step_tiled` workgroup.
pub(crate) const TILED_TILE: (u32, u32) = (16, 16);
/// Hidden units × batch rows of one `step_units` workgroup.
pub(crate) const UNITS_TILE: (u32, u32) = (32, 4);
/// Hidden units × batch rows of one `step_rows` workgroup.
pub(crate) const ROWS_TILE: (u32, u32) = (32, 8);

/// Which tiling of the step kernel to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepTiling {
    /// `Gemv` up to [`StepTiling::GEMV_MAX_BATCH`], `Tiled` above; on a software
    /// adapter (a CPU running the shaders) `Units` and `Rows` instead.
    #[default]
    Auto,
    /// Split-K matrix-vector product: keeps the GPU busy at B = 1.
    Gemv,
    /// Register-blocked tile over batch × units: large batches.
    Tiled,
    /// One hidden unit per invocation, batch rows uniform, no barriers: small batches
    /// on software adapters.
    Units,
    /// One batch row per invocation, units uniform, no barriers: large batches on
    /// software adapters.
    Rows,
}

impl StepTiling {
    pub const GEMV_MAX_BATCH: usize = 8;

    /// The tiling `Auto` stands for at this batch size, with the software-adapter
    /// kernel forms or not ([`crate::GpuContext::software_kernels`]).
    pub(crate) fn resolve_for(self, batch: usize, software: bool) -> StepTiling {
        let small = batch <= Self::GEMV_MAX_BATCH;
        match (self, software) {
            (StepTiling::Auto, false) if small => StepTiling::Gemv,
            (StepTiling::Auto, false) => StepTiling::Tiled,
            (StepTiling::Auto, true) if small => StepTiling::Units,
            (StepTiling::Auto, true) => StepTiling::Rows,
            (t, _) => t,
        }
    }
}

/// The per-step index table of a forward over `t` steps in chunks of `chunk_len`: one
/// [`StepIndex`] per (time step, direction) at entry `2t + d`.
pub(crate) fn index_table(ctx: &GpuContext, t: usize, chunk_len: usize) -> Result<IndexTable> {
    let mut entries = Vec::with_capacity(2 * t);
    for step in 0..t {
        for d in 0..2 {
            // Step s of a direction reads state half s % 2; the reverse direction's
            // step count runs from the end.
            let s = if d == 0 { step } else { t - 1 - step };
            entries.push(StepIndex {
                t_global: step as u32,
                t_local: (step % chunk_len) as u32,
                parity: (s % 2) as u32,
                _pad: 0,
            });
        }
    }
    IndexTable::new(ctx, "step index", &entries)
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
    tiling: StepTiling,
    h: usize,
    b: usize,
) -> (&wgpu::ComputePipeline, (u32, u32)) {
    let (pipeline, tile) = match tiling {
        StepTiling::Tiled => (&k.step_tiled, TILED_TILE),
        StepTiling::Units => (&k.step_units, UNITS_TILE),
        StepTiling::Rows => (&k.step_rows, ROWS_TILE),
        StepTiling::Gemv | StepTiling::Auto => (&k.step_gemv, GEMV_TILE),
    };
    (
        pipeline,
        ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1)),
    )
}

/// Records the steps `ts` (in order) of direction `d` into `pass`.
pub(crate) fn record(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    (pipeline, grid): (&wgpu::ComputePipeline, (u32, u32)),
    index: &IndexTable,
    bufs: &StepBuffers,
    d: usize,
    ts: impl Iterator<Item = usize>,
) -> Result<()> {
    let k = ctx.kernels()?;
    let bg = bind_group(
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
    );
    pass.set_pipeline(pipeline);
    for t in ts {
        pass.set_bind_group(0, &bg, &[index.offset(2 * t + d)]);
        pass.dispatch_workgroups(grid.0, grid.1, 1);
    }
    Ok(())
}

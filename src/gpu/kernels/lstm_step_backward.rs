//! `shaders/lstm_step_backward.wgsl`: one fused BPTT step per dispatch (gate
//! derivatives, `dh_{t-1} = dz·W_hh`, `dc_{t-1}`), plus a final dispatch that writes
//! `(dh_0, dc_0)`. CPU twin: [`crate::cpu::lstm_step_backward`].

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::gpu::buffers::{bind_group, IndexTable};
use crate::gpu::context::GpuContext;

/// Mirrors `BackwardParams` in `shaders/lstm_step_backward.wgsl`.
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
    pub _pad: u32,
}

/// Mirrors `BackwardIndex` in `shaders/lstm_step_backward.wgsl`.
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

/// The backward index table of `t` steps: per direction `d`, entries
/// `d·(T+1) + s` for the steps `s = 0..T` in the reverse of the forward's order, then
/// the FINAL entry `s = T`.
pub(crate) fn index_table(ctx: &GpuContext, t_len: usize) -> Result<IndexTable> {
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
            let t = if s < t_len { order(s) } else { 0 };
            entries.push(BackwardIndex {
                t_global: t as u32,
                t_local: t as u32,
                t_prev: if s > 0 { order(s - 1) } else { 0 } as u32,
                bits,
            });
        }
    }
    IndexTable::new(ctx, "backward index", &entries)
}

/// What one layer-direction's backward steps read and write (bindings 0, 2–9).
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

/// Records the `t_len` steps and the FINAL dispatch of direction `d` (`h` units, `b` rows).
pub(crate) fn record(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    index: &IndexTable,
    bufs: &BackwardBuffers,
    (d, t_len, h, b): (usize, usize, usize, usize),
) -> Result<()> {
    let k = ctx.kernels()?;
    // Software adapters get the barrier-free form (see lstm_step_backward.wgsl).
    let (pipeline, tile) = if ctx.software_kernels() {
        (&k.step_backward_rows, BACKWARD_ROWS_TILE)
    } else {
        (&k.step_backward, BACKWARD_TILE)
    };
    let grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    let bg = bind_group(
        ctx,
        &k.backward_layout,
        &[
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
        ],
    );
    pass.set_pipeline(pipeline);
    for s in 0..=t_len {
        pass.set_bind_group(0, &bg, &[index.offset(d * (t_len + 1) + s)]);
        pass.dispatch_workgroups(grid.0, grid.1, 1);
    }
    Ok(())
}

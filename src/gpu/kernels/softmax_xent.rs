//! `shaders/softmax_xent.wgsl`: per-row softmax cross-entropy, its gradient and the
//! row's `(loss, correct)`. CPU twin: [`crate::cpu::softmax_xent`].

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::gpu::buffers::{bind_group, uniform};
use crate::gpu::context::GpuContext;

/// Mirrors `XentParams` in `shaders/softmax_xent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct XentParams {
    pub rows: u32,
    pub classes: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// The buffers of one dispatch: `logits` `[R, C]`, `labels` `[R]` u32, `weights` `[R]`
/// in; `dlogits` `[R, C]` and `stats` `[R][2]` out.
pub(crate) struct XentBuffers<'a> {
    pub logits: &'a wgpu::Buffer,
    pub labels: &'a wgpu::Buffer,
    pub weights: &'a wgpu::Buffer,
    pub dlogits: &'a wgpu::Buffer,
    pub stats: &'a wgpu::Buffer,
}

/// Records one dispatch (one workgroup per row).
pub(crate) fn record(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    p: XentParams,
    bufs: &XentBuffers,
) -> Result<()> {
    let k = ctx.kernels()?;
    let params = uniform(ctx, "xent params", &p);
    let bg = bind_group(
        ctx,
        &k.xent_layout,
        &[
            params.as_entire_binding(),
            bufs.logits.as_entire_binding(),
            bufs.labels.as_entire_binding(),
            bufs.weights.as_entire_binding(),
            bufs.dlogits.as_entire_binding(),
            bufs.stats.as_entire_binding(),
        ],
    );
    pass.set_pipeline(&k.xent);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(p.rows, 1, 1);
    Ok(())
}

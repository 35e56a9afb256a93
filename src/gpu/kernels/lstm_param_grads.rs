//! `shaders/lstm_param_grads.wgsl`: the bias and diagonal-peephole gradients, sums
//! over all `T·B` rows in a fixed order. CPU twin: [`crate::cpu::lstm_param_grads`].

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::gpu::buffers::{bind_group, uniform};
use crate::gpu::context::GpuContext;

/// Mirrors `GradParams` in `shaders/lstm_param_grads.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct GradParams {
    pub rows: u32,
    pub hidden: u32,
    pub peephole: u32,
    pub _pad: u32,
}

/// Records one dispatch: `db` `[4H]` (unit-interleaved) and `dp` `[3H]` (Diagonal only)
/// from `dz`, `gates` `[R][H]` vec4 and `prev` `[R][2H]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    p: GradParams,
    dz: &wgpu::Buffer,
    gates: &wgpu::Buffer,
    prev: &wgpu::Buffer,
    db: &wgpu::Buffer,
    dp: &wgpu::Buffer,
) -> Result<()> {
    let k = ctx.kernels()?;
    let params = uniform(ctx, "grad params", &p);
    let bg = bind_group(
        ctx,
        &k.grads_layout,
        &[
            params.as_entire_binding(),
            dz.as_entire_binding(),
            gates.as_entire_binding(),
            prev.as_entire_binding(),
            db.as_entire_binding(),
            dp.as_entire_binding(),
        ],
    );
    pass.set_pipeline(&k.param_grads);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(p.hidden.div_ceil(64), 1, 1);
    Ok(())
}

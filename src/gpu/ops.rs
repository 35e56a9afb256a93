//! Recording helpers shared by the forward schedule, training and `linear`.

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::kernels::MatmulParams;

/// A uniform buffer holding `value`.
pub(crate) fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// A bind group whose entries are `resources` at bindings 0, 1, 2, …
pub(crate) fn bind_group(
    ctx: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

/// Records one `matmul.wgsl` dispatch: `c = op(a)·op(b)` (+ `c`) (+ `bias`), as `p` says.
pub(crate) fn matmul(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    p: MatmulParams,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    c: &wgpu::Buffer,
) {
    let k = ctx.kernels().expect("kernels are built before recording");
    let params = uniform(ctx, "matmul params", &p);
    let bias = bias.unwrap_or(ctx.dummy());
    let bg = bind_group(
        ctx,
        &k.matmul_layout,
        &[
            params.as_entire_binding(),
            a.as_entire_binding(),
            b.as_entire_binding(),
            bias.as_entire_binding(),
            c.as_entire_binding(),
        ],
    );
    // A CPU running the shaders gets the barrier-free form (see matmul.wgsl).
    let (pipeline, (gx, gy)) = if ctx.software_kernels() {
        (&k.matmul_rows, p.grid_rows())
    } else {
        (&k.matmul, p.grid())
    };
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(gx, gy, 1);
}

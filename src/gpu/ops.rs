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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::model::storage_init;

    /// `matmul.wgsl`'s two entry points (`main`, tiled, and `main_rows`, the software
    /// adapters' form) agree bit for bit: same summation order, every flag, offsets and
    /// leading dimensions, sizes off every tile edge.
    #[test]
    fn matmul_forms_agree() {
        let Ok(mut ctx) = GpuContext::new() else {
            return; // no adapter: the integration tests say so loudly
        };
        let cases = [
            MatmulParams::new(28, 4, 30).a_trans(),
            MatmulParams::new(70, 14, 30).a_trans().ldb(20),
            MatmulParams::new(28, 7, 30)
                .a_trans()
                .ldb(14)
                .offsets(3, 5, 7),
            MatmulParams::new(30, 9, 28).b_trans().bias(),
            MatmulParams::new(65, 66, 17).accumulate().ldc(70),
            MatmulParams::new(12, 6, 10)
                .a_trans()
                .b_trans()
                .accumulate()
                .bias(),
        ];
        let data = |n: usize, mul: usize, modulo: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * mul) % modulo) as f32 / modulo as f32 - 0.5)
                .collect()
        };
        for p in cases {
            let mut outs = Vec::new();
            for software in [false, true] {
                ctx.set_software_kernels(software);
                let a = storage_init(&ctx, "a", &data(6000, 7919, 97));
                let b = storage_init(&ctx, "b", &data(6000, 104_729, 89));
                let bias = storage_init(&ctx, "bias", &data(100, 31, 13));
                let c = storage_init(&ctx, "c", &data(6000, 17, 11));
                let mut encoder = ctx.device.create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    matmul(&ctx, &mut pass, p, &a, &b, Some(&bias), &c);
                }
                outs.push(ctx.submit_and_read(encoder, &[(&c, c.size())]).unwrap());
            }
            assert_eq!(outs[0], outs[1], "{p:?}");
        }
    }
}

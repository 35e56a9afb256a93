//! Stand-alone use of the `input_proj` GEMM: `Y = X·Wᵀ + b` on the GPU.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::context::GpuContext;
use super::kernels::{ProjParams, PROJ_TILE};
use super::model::storage_init;
use crate::error::{LstmError, Result};

/// `x` `[M, K]`, `w` `[N, K]`, `bias` `[N]` → `x·wᵀ + bias` `[M, N]`, computed by
/// `shaders/input_proj.wgsl` (the kernel that hoists an LSTM's input projection).
pub fn input_proj(
    ctx: &GpuContext,
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
) -> Result<Array2<f32>> {
    let ((m, k), (n, kw)) = (x.dim(), w.dim());
    if kw != k || bias.len() != n {
        return Err(LstmError::shape(
            "input_proj operands",
            format!("x [M, {k}], w [N, {k}], bias [N]"),
            format!(
                "x {:?}, w {:?}, bias {:?}",
                x.shape(),
                w.shape(),
                bias.shape()
            ),
        ));
    }
    if m == 0 || n == 0 || k == 0 {
        return Err(LstmError::shape(
            "input_proj operands",
            "non-zero sizes",
            format!("M={m} N={n} K={k}"),
        ));
    }
    let limit = ctx.max_binding_bytes();
    if [m * k, n * k, m * n].iter().any(|&f| 4 * f as u64 > limit) {
        return Err(LstmError::DeviceLimit(format!(
            "input_proj operands exceed the {limit}-byte storage binding"
        )));
    }
    let kernels = ctx.kernels()?;
    let data = ctx.scoped("input_proj", || {
        let dev = &ctx.device;
        let params = ProjParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            _pad: 0,
        };
        let uniform = wgpu::util::DeviceExt::create_buffer_init(
            dev,
            &wgpu::util::BufferInitDescriptor {
                label: Some("proj params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let xb = storage_init(
            ctx,
            "x",
            &x.as_standard_layout().iter().copied().collect::<Vec<_>>(),
        );
        let wb = storage_init(
            ctx,
            "w",
            &w.as_standard_layout().iter().copied().collect::<Vec<_>>(),
        );
        let bb = storage_init(ctx, "bias", &bias.to_vec());
        let out = storage_init(ctx, "y", &vec![f32::NAN; m * n]);
        let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("input_proj"),
            layout: &kernels.proj_layout,
            entries: &[&uniform, &xb, &wb, &bb, &out]
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect::<Vec<_>>(),
        });
        let mut encoder = dev.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&kernels.proj);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(
                (n as u32).div_ceil(PROJ_TILE),
                (m as u32).div_ceil(PROJ_TILE),
                1,
            );
        }
        ctx.submit_and_read(encoder, &[(&out, out.size())])
    })?;
    Ok(
        Array2::from_shape_vec((m, n), data.into_iter().next().expect("one buffer"))
            .expect("m·n floats"),
    )
}

//! Stand-alone use of the crate's GEMM: `Y = X·Wᵀ + b` on the GPU.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::context::GpuContext;
use super::kernels::MatmulParams;
use super::model::storage_init;
use super::ops;
use crate::error::{LstmError, Result};

/// `x` `[M, K]`, `w` `[N, K]`, `bias` `[N]` → `x·wᵀ + bias` `[M, N]`, computed by
/// `shaders/matmul.wgsl` exactly as it hoists an LSTM's input projection.
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
    // 64 rows per workgroup; columns 64 (or 8 in the software form) per workgroup.
    let groups = ctx.limits().max_compute_workgroups_per_dimension as usize * 8;
    if [m * k, n * k, m * n].iter().any(|&f| 4 * f as u64 > limit) || m > groups || n > groups {
        return Err(LstmError::DeviceLimit(format!(
            "input_proj operands M={m} N={n} K={k} exceed the device's limits"
        )));
    }
    ctx.kernels()?;
    let data = ctx.scoped("input_proj", || {
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
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            ops::matmul(
                ctx,
                &mut pass,
                MatmulParams::new(m, n, k).b_trans().bias(),
                &xb,
                &wb,
                Some(&bb),
                &out,
            );
        }
        ctx.submit_and_read(encoder, &[(&out, out.size())])
    })?;
    Ok(
        Array2::from_shape_vec((m, n), data.into_iter().next().expect("one buffer"))
            .expect("m·n floats"),
    )
}

//! `shaders/matmul.wgsl`: one GEMM for the input projection and the weight gradients
//! (transposes, leading dimensions, offsets, accumulate, bias as flags), and its
//! stand-alone use `input_proj`. CPU twin: [`crate::cpu::matmul`].

use bytemuck::{Pod, Zeroable};
use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::error::{LstmError, Result};
use crate::gpu::buffers::{bind_group, storage_init, uniform};
use crate::gpu::context::GpuContext;

/// Mirrors `MatmulParams` in `shaders/matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub _pad: [u32; 2],
}

#[allow(dead_code)] // the transposed and accumulating forms serve training
impl MatmulParams {
    pub const A_TRANS: u32 = 1;
    pub const B_TRANS: u32 = 2;
    pub const ACCUMULATE: u32 = 4;
    pub const BIAS: u32 = 8;

    /// `c[m, n] = a[m, k] · b[k, n]`, all row-major and packed.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        MatmulParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            flags: 0,
            lda: k as u32,
            ldb: n as u32,
            ldc: n as u32,
            a_off: 0,
            b_off: 0,
            c_off: 0,
            _pad: [0; 2],
        }
    }
    /// `a` is stored `[k, m]` and used transposed.
    pub fn a_trans(mut self) -> Self {
        self.flags |= Self::A_TRANS;
        self.lda = self.m;
        self
    }
    /// `b` is stored `[n, k]` and used transposed.
    pub fn b_trans(mut self) -> Self {
        self.flags |= Self::B_TRANS;
        self.ldb = self.k;
        self
    }
    pub fn accumulate(mut self) -> Self {
        self.flags |= Self::ACCUMULATE;
        self
    }
    pub fn bias(mut self) -> Self {
        self.flags |= Self::BIAS;
        self
    }
    pub fn lda(mut self, ld: usize) -> Self {
        self.lda = ld as u32;
        self
    }
    pub fn ldb(mut self, ld: usize) -> Self {
        self.ldb = ld as u32;
        self
    }
    pub fn ldc(mut self, ld: usize) -> Self {
        self.ldc = ld as u32;
        self
    }
    /// Element offsets of `a`, `b` and `c` in their buffers.
    pub fn offsets(mut self, a: usize, b: usize, c: usize) -> Self {
        self.a_off = a as u32;
        self.b_off = b as u32;
        self.c_off = c as u32;
        self
    }
    pub fn grid(&self) -> (u32, u32) {
        (self.n.div_ceil(MATMUL_TILE), self.m.div_ceil(MATMUL_TILE))
    }
    /// Grid of the `main_rows` entry point (software adapters).
    pub fn grid_rows(&self) -> (u32, u32) {
        (self.n.div_ceil(MATMUL_ROWS_COLS), self.m.div_ceil(64))
    }
}

/// Output tile of `matmul.wgsl` (rows and columns).
pub(crate) const MATMUL_TILE: u32 = 64;
/// Output columns of one `main_rows` workgroup of `matmul.wgsl` (its rows: 64).
pub(crate) const MATMUL_ROWS_COLS: u32 = 8;
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
            matmul(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::buffers::storage_init;

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

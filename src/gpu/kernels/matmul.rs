//! `shaders/matmul.wgsl`: one GEMM for the input projection and the weight gradients
//! (transposes, leading dimensions, offsets, accumulate, bias as flags), and its
//! stand-alone use `input_proj`. CPU twin: [`crate::cpu::matmul()`].

use ndarray::{Array2, ArrayView1, ArrayView2};

pub use super::matmul_params::MatmulParams;
pub(crate) use super::matmul_params::MATMUL_TILE;
use super::matmul_quads;
use super::Dispatch;
use crate::error::{LstmError, Result};
use crate::gpu::buffers::{bind_group, new_storage, storage_init, uniform};
use crate::gpu::context::GpuContext;

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
    prepare(ctx, p, a, b, bias, c).record(pass);
}

/// One `matmul.wgsl` dispatch with its operands bound, to record any number of times.
pub(crate) fn prepare(
    ctx: &GpuContext,
    p: MatmulParams,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    c: &wgpu::Buffer,
) -> Dispatch {
    let k = ctx.kernels().expect("kernels are built before recording");
    let p = if ctx.software_kernels() {
        p.for_software()
    } else {
        p
    };
    let params = uniform(ctx, "matmul params", &p);
    let bias = bias.unwrap_or(ctx.dummy());
    let resources = [
        params.as_entire_binding(),
        a.as_entire_binding(),
        b.as_entire_binding(),
        bias.as_entire_binding(),
        c.as_entire_binding(),
    ];
    let bind_group = bind_group(ctx, &k.matmul_layout, &resources);
    let groups = ctx.limits().max_compute_workgroups_per_dimension;
    // A CPU running the shaders gets the barrier-free forms (see matmul.wgsl), written
    // out with vec4 loads where the operands allow (matmul_quads.wgsl).
    let sizes = (a.size(), b.size());
    let quads = matmul_quads::form_for(&p, sizes, groups).filter(|_| ctx.quad_forms());
    let (pipeline, grid) = match (ctx.software_kernels(), quads) {
        (true, Some(form)) => (k.matmul_quads(form), matmul_quads::grid(&p)),
        (true, None) => (&k.matmul_rows, p.grid_rows()),
        (false, _) => (&k.matmul, p.grid()),
    };
    Dispatch {
        pipeline: pipeline.clone(),
        bind_group,
        grid,
    }
}

/// A product that may run split over K (`matmul.wgsl`'s split-K: `main` over a grid z of
/// K slices into its owner's scratch buffer, then `sum_splits`): the weight gradients,
/// whose `[4H, I]` / `[4H, K]` outputs have few tiles and sum over all T·B rows. Only
/// the tiled form splits; elsewhere it is [`prepare`]'s one dispatch.
pub(crate) struct SplitGemm {
    product: Dispatch,
    /// Grid z of `product`: its K slices (1: not split).
    slices: u32,
    /// `sum_splits` over the scratch (which its owner keeps and may share).
    sum: Option<Dispatch>,
}

impl SplitGemm {
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        let p = &self.product;
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &p.bind_group, &[]);
        pass.dispatch_workgroups(p.grid.0, p.grid.1, self.slices);
        if let Some(sum) = &self.sum {
            sum.record(pass);
        }
    }
}

/// `(slices, k_chunk)` of `p` on this context with `max_scratch_bytes` of scratch: the
/// tiled form's split ([`MatmulParams::split_k`]) unless the context turned it off; the
/// software forms never split.
fn split_of(ctx: &GpuContext, p: &MatmulParams, max_scratch_bytes: u64) -> (u32, u32) {
    match ctx.software_kernels() || !ctx.split_k() {
        true => (1, 0),
        false => p.split_k(
            max_scratch_bytes.min(ctx.max_binding_bytes()),
            ctx.limits().max_compute_workgroups_per_dimension,
        ),
    }
}

/// Floats of scratch [`prepare_split`] would use for `p` (0: it does not split).
pub(crate) fn split_scratch_floats(ctx: &GpuContext, p: &MatmulParams) -> usize {
    match split_of(ctx, p, u64::MAX) {
        (1, _) => 0,
        (slices, _) => slices as usize * p.m as usize * p.n as usize,
    }
}

/// A scratch of `floats` for split products (the context's dummy for 0: none splits).
pub(crate) fn split_scratch(ctx: &GpuContext, floats: usize) -> wgpu::Buffer {
    match floats {
        0 => ctx.dummy().clone(),
        n => new_storage(ctx, "split-K slices", n, false),
    }
}

/// [`prepare`], split over K where [`MatmulParams::split_k`] says so (tiled form only),
/// into as many slices as `scratch` holds (the context's dummy: none).
pub(crate) fn prepare_split(
    ctx: &GpuContext,
    p: MatmulParams,
    [a, b]: [&wgpu::Buffer; 2],
    (bias, c): (Option<&wgpu::Buffer>, &wgpu::Buffer),
    scratch: &wgpu::Buffer,
) -> SplitGemm {
    let (slices, k_chunk) = split_of(ctx, &p, scratch.size());
    if slices == 1 {
        let product = prepare(ctx, p, a, b, bias, c);
        return SplitGemm {
            product,
            slices,
            sum: None,
        };
    }
    // Slice z of the scratch is a packed [M, N] block: no flags, no offset.
    let flags = p.flags & (MatmulParams::A_TRANS | MatmulParams::B_TRANS);
    let partial = MatmulParams {
        flags,
        ldc: p.n,
        c_off: 0,
        k_chunk,
        ..p
    };
    let product = prepare(ctx, partial, a, b, None, scratch);
    let summed = MatmulParams {
        k: slices,
        lda: p.n,
        a_off: 0,
        ..p
    };
    // Bound as `main` with the scratch as `a`; then `sum_splits` over (N, M).
    let mut sum = prepare(ctx, summed, scratch, ctx.dummy(), bias, c);
    sum.pipeline = ctx
        .kernels()
        .expect("kernels are built before recording")
        .matmul_sum_splits
        .clone();
    sum.grid = (p.n.div_ceil(64), p.m);
    SplitGemm {
        product,
        slices,
        sum: Some(sum),
    }
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

/// The single-kernel entry point of `matmul.wgsl`, used by `tests/kernels.rs` and usable
/// on its own: uploads `a`, `b`, `bias` and the whole `c` buffer, records one dispatch
/// as `p` says (the tiled `main`, split over K where the output has few tiles and K is long, or
/// `main_rows` when [`GpuContext::software_kernels`]),
/// and returns the `c` buffer afterwards. `c` is what ACCUMULATE adds to and what stays
/// outside the `[m, n]` block at `c_off`/`ldc`; fill the block with NaN to see every
/// element the kernel writes. `bias` must be given exactly when `p` has the BIAS flag.
pub fn run(
    ctx: &GpuContext,
    p: MatmulParams,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &[f32],
) -> Result<Vec<f32>> {
    check_run(ctx, &p, [a.len(), b.len(), c.len()], bias.map(<[f32]>::len))?;
    ctx.kernels()?;
    let data = ctx.scoped("matmul", || {
        let ab = storage_init(ctx, "a", a);
        let bb = storage_init(ctx, "b", b);
        let biasb = bias.map(|v| storage_init(ctx, "bias", v));
        let cb = storage_init(ctx, "c", c);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let scratch = split_scratch(ctx, split_scratch_floats(ctx, &p));
            let out = (biasb.as_ref(), &cb);
            prepare_split(ctx, p, [&ab, &bb], out, &scratch).record(&mut pass);
        }
        ctx.submit_and_read(encoder, &[(&cb, cb.size())])
    })?;
    data.into_iter()
        .next()
        .ok_or_else(|| LstmError::value("matmul readback", "no buffer came back"))
}

/// The checks of [`run`]: every element `p` addresses lies inside its slice (`lens`:
/// a, b, c), the flags and `bias` agree, and the buffers and grid fit the device.
fn check_run(
    ctx: &GpuContext,
    p: &MatmulParams,
    lens: [usize; 3],
    bias: Option<usize>,
) -> Result<()> {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let flag = |f: u32| p.flags & f != 0;
    let shape_err = |got: String| LstmError::shape("matmul operands", format!("{p:?}"), got);
    if m == 0 || n == 0 || k == 0 || p.flags > 15 {
        return Err(shape_err("zero sizes or unknown flags".into()));
    }
    let a = if flag(MatmulParams::A_TRANS) {
        (k, m)
    } else {
        (m, k)
    };
    let b = if flag(MatmulParams::B_TRANS) {
        (n, k)
    } else {
        (k, n)
    };
    let operands = [
        ("a", a, p.lda, p.a_off, lens[0]),
        ("b", b, p.ldb, p.b_off, lens[1]),
        ("c", (m, n), p.ldc, p.c_off, lens[2]),
    ];
    for (name, (rows, cols), ld, off, len) in operands {
        let need = off as usize + (rows - 1) * ld as usize + cols;
        if (ld as usize) < cols || need > len {
            return Err(shape_err(format!(
                "{name}: {len} floats for [{rows}, {cols}] at offset {off}, leading dimension {ld} (needs {need})"
            )));
        }
    }
    if flag(MatmulParams::BIAS) != bias.is_some() || bias.is_some_and(|l| l < n) {
        return Err(shape_err(format!("bias of {bias:?} floats")));
    }
    let limit = ctx.max_binding_bytes();
    let (gx, gy) = if ctx.software_kernels() {
        p.for_software().grid_rows()
    } else {
        p.grid()
    };
    let groups = ctx.limits().max_compute_workgroups_per_dimension;
    let too_big = lens
        .iter()
        .chain(bias.iter())
        .any(|&f| 4 * f as u64 > limit);
    if too_big || gx > groups || gy > groups {
        return Err(LstmError::DeviceLimit(format!(
            "matmul operands {p:?} exceed the device's limits"
        )));
    }
    Ok(())
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

//! What the adapter allows, measured: the floors a forward pass is compared against.
//!
//! - [`empty_dispatch`]: the fixed cost of one dependent dispatch recorded the way the
//!   LSTM records its steps (one compute pass, a dynamic uniform offset per dispatch,
//!   state ping-ponging between two buffers). The floor of a per-step schedule.
//! - [`copy_bandwidth`]: device memory bandwidth from a large buffer-to-buffer copy,
//!   counted as bytes read + bytes written per second. The floor at batch 1, where a
//!   step streams its recurrent weights once.
//! - [`gemm_rate`]: the crate's own GEMM (`shaders/matmul.wgsl`) on a large square
//!   product with every operand resident on the GPU. The floor at large batch.
//!
//! Each probe times two amounts of work in one submit each and takes the difference,
//! so submit and synchronisation costs cancel; every timing is the best of several
//! repetitions. Each probe also checks that the GPU did the work (the dispatch chain's
//! sum, the copied words, sampled GEMM outputs against an f64 dot product).

use std::time::Instant;

use rand::{Rng, SeedableRng};

use crate::error::{LstmError, Result};
use crate::gpu::kernels::matmul::{matmul, MatmulParams};
use crate::gpu::kernels::{self, PROBE_EMPTY};
use crate::gpu::{bind_group, storage_init, GpuContext, IndexTable};

/// Cost of one dependent, empty dispatch.
#[derive(Clone, Copy, Debug)]
pub struct DispatchProbe {
    /// Seconds per dispatch (the marginal cost of one more dispatch in the pass).
    pub seconds: f64,
    /// Dispatches in the longer of the two timed passes.
    pub dispatches: usize,
}

/// Device memory bandwidth from a buffer copy.
#[derive(Clone, Copy, Debug)]
pub struct CopyProbe {
    /// Bytes read plus bytes written per second.
    pub bytes_per_s: f64,
    /// Size of the copied buffer.
    pub buffer_bytes: u64,
}

/// Throughput of the crate's GEMM kernel on an `n × n × n` product.
#[derive(Clone, Copy, Debug)]
pub struct GemmProbe {
    pub n: usize,
    /// `2·n³` per second.
    pub flops_per_s: f64,
    /// Seconds per GEMM dispatch.
    pub seconds: f64,
    /// Largest |GPU − f64 reference| over the sampled outputs.
    pub max_err: f64,
}

/// All three floors, measured on one adapter.
#[derive(Clone, Copy, Debug)]
pub struct HardwareLimits {
    pub dispatch: DispatchProbe,
    pub copy: CopyProbe,
    pub gemm: GemmProbe,
}

/// Probe sizes: `quick` for tests and `--quick` runs (well under a second each on a
/// software adapter), otherwise large enough that the differences are stable.
#[derive(Clone, Copy, Debug)]
pub struct ProbeSizes {
    pub dispatches: usize,
    pub copy_bytes: u64,
    pub gemm_n: usize,
    pub repeats: usize,
}

impl ProbeSizes {
    pub fn quick() -> ProbeSizes {
        ProbeSizes {
            dispatches: 256,
            copy_bytes: 16 << 20,
            gemm_n: 256,
            repeats: 3,
        }
    }
    pub fn full() -> ProbeSizes {
        ProbeSizes {
            dispatches: 2048,
            copy_bytes: 64 << 20,
            // Large enough to fill any adapter's threads; 1024 takes seconds per
            // product on a software adapter.
            gemm_n: 512,
            repeats: 5,
        }
    }
}

/// Runs all three probes.
pub fn measure_limits(ctx: &GpuContext, sizes: ProbeSizes) -> Result<HardwareLimits> {
    Ok(HardwareLimits {
        dispatch: empty_dispatch(ctx, sizes.dispatches, sizes.repeats)?,
        copy: copy_bandwidth(ctx, sizes.copy_bytes, sizes.repeats)?,
        gemm: gemm_rate(ctx, sizes.gemm_n, sizes.repeats)?,
    })
}

/// Shortest wall time of `repeats` runs of `record` submitted and waited for (after one
/// untimed warm-up run). The minimum, not the median: a limit is what the adapter can
/// do, and other load on the machine only ever adds time.
fn time_submits(
    ctx: &GpuContext,
    repeats: usize,
    record: &dyn Fn(&mut wgpu::CommandEncoder),
) -> Result<f64> {
    let mut times = Vec::with_capacity(repeats);
    for i in 0..=repeats {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        record(&mut encoder);
        let t0 = Instant::now();
        ctx.submit_and_wait(encoder)?;
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(times.into_iter().fold(f64::INFINITY, f64::min))
}

/// Marginal cost per unit of work between `small` and `large` units, never below 1 ns
/// (a difference lost in noise must not become a zero or negative floor).
fn marginal(t_small: f64, t_large: f64, small: usize, large: usize) -> f64 {
    ((t_large - t_small) / (large - small) as f64).max(1e-9)
}

/// Cost of one dependent empty dispatch, from passes of `n / 4` and `n` dispatches.
pub fn empty_dispatch(ctx: &GpuContext, n: usize, repeats: usize) -> Result<DispatchProbe> {
    let n = n.max(8);
    let dev = ctx.device();
    let (chain_sum, probe) = ctx.scoped("empty-dispatch probe", || {
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("probe_empty"),
            source: wgpu::ShaderSource::Wgsl(PROBE_EMPTY.into()),
        });
        let layout = kernels::layout(dev, "probe_empty", "d r w");
        let pipeline = kernels::pipeline(dev, &layout, &module, "main");
        let steps: Vec<u32> = (0..n as u32).collect();
        let index = IndexTable::new(ctx, "probe step index", &steps)?;
        let states = [
            storage_init(ctx, "probe state a", &[0.0]),
            storage_init(ctx, "probe state b", &[0.0]),
        ];
        let groups: Vec<wgpu::BindGroup> = (0..2)
            .map(|p| {
                let resources = [
                    index.binding(16),
                    states[p].as_entire_binding(),
                    states[1 - p].as_entire_binding(),
                ];
                bind_group(ctx, &layout, &resources)
            })
            .collect();
        let (pipeline, groups, index) = (&pipeline, &groups, &index);
        let chain = |count: usize| {
            move |encoder: &mut wgpu::CommandEncoder| {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipeline);
                for t in 0..count {
                    pass.set_bind_group(0, &groups[t % 2], &[index.offset(t)]);
                    pass.dispatch_workgroups(1, 1, 1);
                }
            }
        };
        let small = n / 4;
        let t_small = time_submits(ctx, repeats, &chain(small))?;
        let t_large = time_submits(ctx, repeats, &chain(n))?;
        // One more pass of n dispatches from zeroed state, read back: it must hold 0+1+…+(n-1).
        let mut encoder = dev.create_command_encoder(&Default::default());
        encoder.clear_buffer(&states[0], 0, None);
        chain(n)(&mut encoder);
        let got = ctx.submit_and_read(encoder, &[(&states[n % 2], 4)])?;
        Ok((
            got[0][0].to_bits(),
            DispatchProbe {
                seconds: marginal(t_small, t_large, small, n),
                dispatches: n,
            },
        ))
    })?;
    let want = (n * (n - 1) / 2) as u32;
    if chain_sum != want {
        return Err(LstmError::value(
            "empty-dispatch probe",
            format!("the chain of {n} dispatches summed to {chain_sum}, expected {want}"),
        ));
    }
    Ok(probe)
}

/// Bandwidth of a `bytes`-sized buffer-to-buffer copy (read + write), from encoders
/// holding 1 and 4 copies.
pub fn copy_bandwidth(ctx: &GpuContext, bytes: u64, repeats: usize) -> Result<CopyProbe> {
    let bytes = (bytes / 4).max(1024) * 4;
    let dev = ctx.device();
    let words = (bytes / 4) as usize;
    let (probe, sample) = ctx.scoped("copy-bandwidth probe", || {
        let src: Vec<f32> = (0..words).map(|i| i as f32).collect();
        let a = storage_init(ctx, "probe copy src", &src);
        let b = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("probe copy dst"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let (a, b) = (&a, &b);
        let copies = |count: usize| {
            move |encoder: &mut wgpu::CommandEncoder| {
                for _ in 0..count {
                    encoder.copy_buffer_to_buffer(a, 0, b, 0, bytes);
                }
            }
        };
        let t1 = time_submits(ctx, repeats, &copies(1))?;
        let t4 = time_submits(ctx, repeats, &copies(4))?;
        let last = (words - 1) as u64 * 4;
        let mut encoder = dev.create_command_encoder(&Default::default());
        let tail = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("probe copy tail"),
            size: 4,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(b, last, &tail, 0, 4);
        let got = ctx.submit_and_read(encoder, &[(&tail, 4)])?;
        Ok((
            CopyProbe {
                bytes_per_s: 2.0 * bytes as f64 / marginal(t1, t4, 1, 4),
                buffer_bytes: bytes,
            },
            got[0][0],
        ))
    })?;
    if sample != (words - 1) as f32 {
        return Err(LstmError::value(
            "copy-bandwidth probe",
            format!("last copied word is {sample}, expected {}", words - 1),
        ));
    }
    Ok(probe)
}

/// Throughput of `shaders/matmul.wgsl` on an `n × n` by `n × n` product with every
/// operand on the GPU, from passes of 1 and 3 dependent GEMM dispatches. Checks a
/// sample of the outputs against an f64 dot product.
pub fn gemm_rate(ctx: &GpuContext, n: usize, repeats: usize) -> Result<GemmProbe> {
    let n = n.max(16);
    let limit = ctx.max_binding_bytes();
    if 4 * (n * n) as u64 > limit {
        return Err(LstmError::DeviceLimit(format!(
            "GEMM probe of n = {n} exceeds the {limit}-byte storage binding"
        )));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let x: Vec<f32> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let w: Vec<f32> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    ctx.kernels()?;
    let dev = ctx.device();
    let (seconds, out) = ctx.scoped("GEMM probe", || {
        let xb = storage_init(ctx, "probe gemm x", &x);
        let wb = storage_init(ctx, "probe gemm w", &w);
        let bb = storage_init(ctx, "probe gemm bias", &bias);
        let out = storage_init(ctx, "probe gemm y", &vec![f32::NAN; n * n]);
        // The input projection's form: x [M, K] times W [N, K] transposed, plus bias.
        let params = MatmulParams::new(n, n, n).b_trans().bias();
        let (xb, wb, bb, outb) = (&xb, &wb, &bb, &out);
        let gemms = |count: usize| {
            move |encoder: &mut wgpu::CommandEncoder| {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for _ in 0..count {
                    matmul(ctx, &mut pass, params, xb, wb, Some(bb), outb);
                }
            }
        };
        let t1 = time_submits(ctx, repeats, &gemms(1))?;
        let t3 = time_submits(ctx, repeats, &gemms(3))?;
        let encoder = dev.create_command_encoder(&Default::default());
        let got = ctx.submit_and_read(encoder, &[(&out, out.size())])?;
        Ok((
            marginal(t1, t3, 1, 3),
            got.into_iter().next().unwrap_or_default(),
        ))
    })?;
    // Sampled rows and columns, corners included.
    let picks = [0, 1, n / 3, n / 2, n - 2, n - 1];
    let mut max_err = 0.0f64;
    for &r in &picks {
        for &c in &picks {
            let want: f64 = (0..n)
                .map(|k| f64::from(x[r * n + k]) * f64::from(w[c * n + k]))
                .sum::<f64>()
                + f64::from(bias[c]);
            let err = (f64::from(out[r * n + c]) - want).abs();
            max_err = if err.is_nan() {
                f64::NAN
            } else {
                max_err.max(err)
            };
        }
    }
    Ok(GemmProbe {
        n,
        flops_per_s: 2.0 * (n as f64).powi(3) / seconds,
        seconds,
        max_err,
    })
}

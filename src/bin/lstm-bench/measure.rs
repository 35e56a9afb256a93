//! Timing: medians after a warm-up, by wall clock or the thread's on-CPU time; and the
//! forward of one shape on both paths.

use std::sync::Arc;
use std::time::Instant;

use lstm_wgpu::bench::Shape;
use lstm_wgpu::gpu::{DispatchPlan, ForwardProfile};
use lstm_wgpu::{cpu, ForwardOptions, GpuContext, GpuLstm, LstmOutput, LstmWeights};
use ndarray::Array3;
use rand::{Rng, SeedableRng};

use crate::args::Args;
use crate::Result;

/// One shape's measurements; `None` where that part did not run.
#[derive(Default)]
pub struct Row {
    pub cpu_s: Option<f64>,
    pub gpu_s: Option<f64>,
    /// Median GPU kernel time from timestamps (projection and steps summed separately).
    pub kernel: Option<ForwardProfile>,
    pub max_diff: Option<f32>,
    /// What one GPU forward launches (step kernel form and grid, dispatches).
    pub plan: Option<DispatchPlan>,
}

impl Row {
    /// Time per step dispatch: from the step passes' timestamps where there are any,
    /// else the whole wall time (an upper bound) spread over the steps.
    pub fn step_s(&self, s: &Shape) -> Option<f64> {
        let total = match self.kernel {
            Some(k) => Some(k.steps_s),
            None => self.gpu_s,
        };
        total.map(|t| t / s.steps() as f64)
    }
}

/// Seconds of warm-up runs (at least one) before the timed ones, for quick calls.
const WARM_SECONDS: f64 = 0.1;
/// Most warm-up runs.
const WARM_MAX_RUNS: usize = 30;

/// Median seconds of `f` over `repeats` runs after warm-up runs (one, or up to
/// [`WARM_SECONDS`] of them; fewer timed runs, at least 3, when the first warm-up alone
/// took longer than `slow` seconds).
pub fn median_time<T>(
    repeats: usize,
    slow: f64,
    thread_clock: bool,
    mut f: impl FnMut() -> lstm_wgpu::Result<T>,
) -> Result<(f64, T)> {
    let clock = || -> Result<f64> {
        if thread_clock {
            thread_cpu_seconds()
        } else {
            Ok(t_start().elapsed().as_secs_f64())
        }
    };
    let t0 = clock()?;
    let mut last = f()?;
    let n = if clock()? - t0 > slow {
        repeats.min(3)
    } else {
        repeats
    }
    .max(1);
    // Quick calls warm up for WARM_SECONDS: one warm-up call left the first shape of a
    // process ~7 % slower than the same shape measured again after it (S1 2.3 vs 2.1 ms).
    let mut warm = 1;
    while clock()? - t0 < WARM_SECONDS && warm < WARM_MAX_RUNS {
        last = f()?;
        warm += 1;
    }
    if thread_clock {
        // The thread clock ticks coarsely (4 ms on some kernels): take the mean of all runs.
        let t0 = clock()?;
        for _ in 0..n {
            last = f()?;
        }
        return Ok(((clock()? - t0) / n as f64, last));
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = clock()?;
        last = f()?;
        times.push(clock()? - t0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last))
}

/// A fixed origin for wall-clock readings.
fn t_start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Seconds this thread has run on a CPU (first field of `/proc/thread-self/schedstat`, ns).
fn thread_cpu_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("--thread-clock needs /proc/thread-self/schedstat: {e}"))?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or("unreadable /proc/thread-self/schedstat")?;
    Ok(ns as f64 * 1e-9)
}

/// Both paths on one shape, same seeded weights and input.
pub fn bench_shape(a: &Args, ctx: Option<&Arc<GpuContext>>, s: &Shape) -> Result<Row> {
    let weights = LstmWeights::init(&s.config(), a.seed)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed.wrapping_add(1));
    let x = Array3::from_shape_simple_fn((s.t, s.b, s.input), || rng.random_range(-1.0f32..1.0));
    let mut row = Row::default();
    let mut cpu_out = None;
    if !a.gpu_only {
        // Packed once, like the GPU model's upload (the warm-up run packs).
        let model = cpu::CpuLstm::new(&weights)?;
        let (secs, out) = median_time(a.repeats, a.slow_seconds, a.thread_clock, || {
            model.forward(x.view(), ForwardOptions::default())
        })?;
        row.cpu_s = Some(secs);
        cpu_out = Some(out);
    }
    if let Some(ctx) = ctx {
        let gpu = GpuLstm::new(Arc::clone(ctx), &weights)?;
        row.plan = Some(gpu.dispatch_plan(x.dim().0, x.dim().1)?);
        let (secs, out) = median_time(a.repeats, a.slow_seconds, false, || {
            gpu.forward(x.view(), ForwardOptions::default())
        })?;
        row.gpu_s = Some(secs);
        if ctx.has_timestamps() {
            row.kernel = median_profile(a, &gpu, &x, secs)?;
        }
        row.max_diff = cpu_out.as_ref().map(|want| max_abs_diff(&out, want));
    }
    Ok(row)
}

/// The median kernel-time profile of a few profiled runs (one when a run is slow).
fn median_profile(
    a: &Args,
    gpu: &GpuLstm,
    x: &Array3<f32>,
    secs: f64,
) -> Result<Option<ForwardProfile>> {
    let mut profiles = Vec::new();
    let runs = if secs > a.slow_seconds { 1 } else { 3 };
    for _ in 0..a.repeats.clamp(1, runs) {
        if let (_, Some(p)) = gpu.forward_profiled(x.view(), ForwardOptions::default())? {
            profiles.push(p);
        }
    }
    profiles.sort_by(|p, q| p.total_s().total_cmp(&q.total_s()));
    Ok(profiles.get(profiles.len() / 2).copied())
}

/// Largest |GPU − CPU| over y, h_n and c_n; NaN if any difference is NaN.
fn max_abs_diff(out: &LstmOutput, want: &LstmOutput) -> f32 {
    let diff = |p: &Array3<f32>, q: &Array3<f32>| {
        p.iter()
            .zip(q)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0f32, |m, d| if d.is_nan() { f32::NAN } else { m.max(d) })
    };
    diff(&out.y, &want.y)
        .max(diff(&out.h_n, &want.h_n))
        .max(diff(&out.c_n, &want.c_n))
}

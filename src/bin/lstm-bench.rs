//! `lstm-bench`: CPU path vs GPU path on the standard shapes, each result set against
//! the adapter's limits measured in the same run (see `lstm_wgpu::gpu::probe`).
//!
//! Every row runs both paths on the same seeded weights and inputs, checks the outputs
//! against each other, and reports medians after a warm-up run.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use lstm_wgpu::bench::probe::{self, HardwareLimits, ProbeSizes};
use lstm_wgpu::bench::{all_shapes, quick_shapes, standard_shapes, Shape};
use lstm_wgpu::gpu::ForwardProfile;
use lstm_wgpu::{cpu, ForwardOptions, GpuContext, GpuLstm, LstmWeights};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser, Debug)]
#[command(
    name = "lstm-bench",
    about = "LSTM forward, CPU vs GPU, on the standard shapes, with the adapter's limits"
)]
struct Args {
    /// Small shapes and probes: seconds in all, even on a software adapter.
    #[arg(long)]
    quick: bool,
    /// Comma-separated shape names (S1,S2,S3,S4, DB-H512-B16-T25, …, Q1,Q2,Q3).
    #[arg(long, value_delimiter = ',')]
    shapes: Vec<String>,
    /// Timed runs per measurement (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Fewer runs (but at least 3) for a measurement whose warm-up took longer than this.
    #[arg(long, default_value_t = 2.0)]
    slow_seconds: f64,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Skip the GPU (CPU path only).
    #[arg(long)]
    cpu_only: bool,
    /// Skip the CPU path (GPU only; no correctness check).
    #[arg(long)]
    gpu_only: bool,
    /// Skip measuring the adapter's limits.
    #[arg(long)]
    no_probes: bool,
    /// Time the CPU path by the calling thread's on-CPU time (Linux schedstat; the mean
    /// of the runs, as that clock can be coarse) instead of the median wall time:
    /// steadier on a shared machine, meaningful only single-threaded.
    #[arg(long)]
    thread_clock: bool,
    /// Kernel forms: `auto` (the adapter's default), `hardware` (tiled, workgroup memory)
    /// or `software` (barrier-free forms for CPU adapters); see GpuContext::set_software_kernels.
    #[arg(long, default_value = "auto")]
    kernels: String,
    /// Threads of the CPU path (1 or 2; default: `LSTM_CPU_THREADS` or 1).
    #[arg(long)]
    threads: Option<usize>,
    /// Skip the training-step measurement (the seed model: forward + backward + Adam).
    #[arg(long)]
    no_train: bool,
    /// List the shapes and exit.
    #[arg(long)]
    list: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One shape's measurements; `None` where that part did not run.
#[derive(Default)]
struct Row {
    cpu_s: Option<f64>,
    gpu_s: Option<f64>,
    /// Median GPU kernel time from timestamps (projection and steps summed separately).
    kernel: Option<ForwardProfile>,
    max_diff: Option<f32>,
}

impl Row {
    /// Time per step dispatch: from the step passes' timestamps where there are any,
    /// else the whole wall time (an upper bound) spread over the steps.
    fn step_s(&self, s: &Shape) -> Option<f64> {
        let total = match self.kernel {
            Some(k) => Some(k.steps_s),
            None => self.gpu_s,
        };
        total.map(|t| t / s.steps() as f64)
    }
}

fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on headless
    // machines; give them a harmless value (as the lstm-wgpu binary does).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        let mut source = e.source();
        while let Some(s) = source {
            eprintln!("  caused by: {s}");
            source = s.source();
        }
        std::process::exit(1);
    }
}

fn select_shapes(a: &Args) -> Result<Vec<Shape>> {
    if a.shapes.is_empty() {
        return Ok(if a.quick {
            quick_shapes()
        } else {
            standard_shapes()
        });
    }
    let all = all_shapes();
    a.shapes
        .iter()
        .map(|name| {
            all.iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
                .cloned()
                .ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                    format!("--shapes: unknown shape {name:?}; known: {names:?}").into()
                })
        })
        .collect()
}

fn run(a: &Args) -> Result<()> {
    let shapes = select_shapes(a)?;
    if let Some(n) = a.threads {
        cpu::set_threads(n);
    }
    if a.list {
        for s in &shapes {
            println!("{:<18} {}", s.name, s.describe());
        }
        return Ok(());
    }
    let ctx = if a.cpu_only {
        None
    } else {
        let mut ctx = GpuContext::new()?;
        match a.kernels.as_str() {
            "auto" => {}
            "hardware" => ctx.set_software_kernels(false),
            "software" => ctx.set_software_kernels(true),
            k => {
                return Err(
                    format!("--kernels: expected auto, hardware or software, got {k:?}").into(),
                )
            }
        }
        Some(Arc::new(ctx))
    };
    println!("lstm-bench — LSTM forward, CPU path vs GPU path, f32, no peepholes");
    println!(
        "CPU path: lstm_wgpu::cpu::forward, {} thread(s), timed by {}",
        cpu::threads(),
        if a.thread_clock {
            "the thread's on-CPU time (--thread-clock)"
        } else {
            "wall clock"
        }
    );
    if let Some(ctx) = &ctx {
        println!("GPU adapter: {}", ctx.describe());
        if ctx.is_software() {
            println!("  SOFTWARE adapter: the \"GPU\" numbers below are the same CPU running compiled shaders");
        }
        println!(
            "  kernel forms: {}",
            if ctx.software_kernels() {
                "software-adapter (barrier-free: matmul main_rows, step_units / step_rows)"
            } else {
                "hardware (tiled, workgroup memory: matmul main, step_gemv / step_tiled)"
            }
        );
        println!(
            "  timestamp queries: {}",
            if ctx.has_timestamps() {
                "yes"
            } else {
                "no (kernel time not reported)"
            }
        );
    }
    let limits = match (&ctx, a.no_probes) {
        (Some(ctx), false) => {
            let sizes = if a.quick {
                ProbeSizes::quick()
            } else {
                ProbeSizes::full()
            };
            let l = probe::measure_limits(ctx, sizes)?;
            print_limits(&l);
            Some(l)
        }
        _ => None,
    };
    println!(
        "timing: median of {} runs after a warm-up (at least 3 for runs over {} s); GPU ms is wall time incl. upload, submit and readback",
        a.repeats, a.slow_seconds
    );
    println!("GF: GFLOP/s, 2·T·B·4H·(I+H) per layer-direction; GPU/CPU: speedup, CPU ms / GPU ms; max|Δ|: largest |GPU − CPU| over y, h_n, c_n");
    println!("kern ms: GPU timestamps (projection + steps passes); step µs: step passes / (T·L·D), or wall / (T·L·D) without timestamps");
    println!("/disp: step / empty dispatch; BW%: weight bytes per step at copy bandwidth / step; GEMM%: step FLOPs at the GEMM rate / step; /floor: step / max of the three");
    println!();
    print_header();
    let mut rows_json = Vec::new();
    for shape in &shapes {
        let row = bench_shape(a, ctx.as_ref(), shape)?;
        print_row(shape, &row, limits.as_ref());
        rows_json.push(row_json(shape, &row, limits.as_ref()));
    }
    let training = if a.no_train {
        Value::Null
    } else {
        bench_training(a, ctx.as_ref())?
    };
    if let Some(path) = &a.json {
        let doc = json!({
            "training_step": training,
            "adapter": ctx.as_ref().map(|c| c.describe()),
            "software_adapter": ctx.as_ref().map(|c| c.is_software()),
            "timestamps": ctx.as_ref().map(|c| c.has_timestamps()),
            "repeats": a.repeats,
            "limits": limits.as_ref().map(limits_json),
            "rows": rows_json,
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
        std::fs::write(path, text + "\n").map_err(|e| format!("--json {}: {e}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

/// One training step of the seed model (LSTM(256) → Dense(10) on 28×28 MNIST-shaped
/// input, batch 128, softmax cross-entropy, Adam), CPU path vs GPU path, same weights
/// and batch. `--quick`: hidden 32, batch 16. The GPU step reads back its loss, so the
/// wall time includes the sync.
fn bench_training(a: &Args, ctx: Option<&Arc<GpuContext>>) -> Result<Value> {
    use lstm_wgpu::train::{Batch, Classifier, ClassifierParams, CpuClassifier, TrainConfig};
    let (b, h) = if a.quick { (16, 32) } else { (128, 256) };
    let lstm = lstm_wgpu::LstmConfig::new(28, h).batch_first(true);
    let params = ClassifierParams::init(&lstm, 10, 1.0, a.seed)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed + 7);
    let x = Array3::from_shape_simple_fn((b, 28, 28), || rng.random_range(0.0f32..1.0));
    let labels: Vec<usize> = (0..b).map(|i| i % 10).collect();
    let batch = Batch {
        x: x.view(),
        targets: &labels,
        seq_lens: None,
    };
    let mut cpu_model = CpuClassifier::new(params.clone(), TrainConfig::default())?;
    let cpu_s = if a.gpu_only {
        None
    } else {
        Some(
            median_time(a.repeats, a.slow_seconds, a.thread_clock, || {
                cpu_model.train_step(&batch, true)
            })?
            .0,
        )
    };
    let gpu_s = match ctx {
        Some(ctx) => {
            let mut gpu_model =
                lstm_wgpu::GpuClassifier::new(ctx.clone(), &params, TrainConfig::default())?;
            Some(
                median_time(a.repeats, a.slow_seconds, false, || {
                    gpu_model.train_step(&batch, true)
                })?
                .0,
            )
        }
        None => None,
    };
    println!();
    println!(
        "training step (T=28 B={b} I=28 H={h} → Dense(10), forward + backward + Adam): CPU {} ms, GPU {} ms",
        fmt_opt(cpu_s.map(|s| s * 1e3), 0, 2).trim(),
        fmt_opt(gpu_s.map(|s| s * 1e3), 0, 2).trim()
    );
    Ok(
        json!({ "batch": b, "hidden": h, "cpu_ms": cpu_s.map(|s| s * 1e3), "gpu_ms": gpu_s.map(|s| s * 1e3) }),
    )
}

/// Median seconds of `f` over `repeats` runs after one warm-up run (fewer runs, at
/// least 3, when the warm-up alone took longer than `slow` seconds).
fn median_time<T>(
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

fn bench_shape(a: &Args, ctx: Option<&Arc<GpuContext>>, s: &Shape) -> Result<Row> {
    let cfg = s.config();
    let weights = LstmWeights::init(&cfg, a.seed)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed + 1);
    let x = Array3::from_shape_simple_fn((s.t, s.b, s.input), || rng.random_range(-1.0f32..1.0));
    let mut row = Row::default();
    let mut cpu_out = None;
    if !a.gpu_only {
        let (secs, out) = median_time(a.repeats, a.slow_seconds, a.thread_clock, || {
            cpu::forward(&weights, x.view(), ForwardOptions::default())
        })?;
        row.cpu_s = Some(secs);
        cpu_out = Some(out);
    }
    if let Some(ctx) = ctx {
        let gpu = GpuLstm::new(Arc::clone(ctx), &weights)?;
        let (secs, out) = median_time(a.repeats, a.slow_seconds, false, || {
            gpu.forward(x.view(), ForwardOptions::default())
        })?;
        row.gpu_s = Some(secs);
        if ctx.has_timestamps() {
            let mut profiles = Vec::new();
            let runs = if secs > a.slow_seconds { 1 } else { 3 };
            for _ in 0..a.repeats.clamp(1, runs) {
                if let (_, Some(p)) = gpu.forward_profiled(x.view(), ForwardOptions::default())? {
                    profiles.push(p);
                }
            }
            profiles.sort_by(|p, q| p.total_s().total_cmp(&q.total_s()));
            row.kernel = profiles.get(profiles.len() / 2).copied();
        }
        if let Some(want) = &cpu_out {
            let diff = |p: &Array3<f32>, q: &Array3<f32>| {
                p.iter()
                    .zip(q)
                    .map(|(u, v)| (u - v).abs())
                    .fold(0.0f32, |m, d| if d.is_nan() { f32::NAN } else { m.max(d) })
            };
            row.max_diff = Some(
                diff(&out.y, &want.y)
                    .max(diff(&out.h_n, &want.h_n))
                    .max(diff(&out.c_n, &want.c_n)),
            );
        }
    }
    Ok(row)
}

fn print_limits(l: &HardwareLimits) {
    println!("limits of this adapter, measured now:");
    println!(
        "  empty dependent dispatch (dynamic offset, one pass): {:.2} µs",
        l.dispatch.seconds * 1e6
    );
    println!(
        "  copy bandwidth ({} MiB buffer, read + write): {:.1} GB/s",
        l.copy.buffer_bytes >> 20,
        l.copy.bytes_per_s / 1e9
    );
    println!(
        "  matmul.wgsl GEMM {n}×{n}×{n}, GPU-resident: {:.1} GFLOP/s (max err {:.1e})",
        l.gemm.flops_per_s / 1e9,
        l.gemm.max_err,
        n = l.gemm.n
    );
}

fn limits_json(l: &HardwareLimits) -> Value {
    json!({
        "empty_dispatch_us": l.dispatch.seconds * 1e6,
        "copy_gb_per_s": l.copy.bytes_per_s / 1e9,
        "copy_buffer_bytes": l.copy.buffer_bytes,
        "gemm_n": l.gemm.n,
        "gemm_gflop_per_s": l.gemm.flops_per_s / 1e9,
        "gemm_max_err": l.gemm.max_err,
    })
}

/// Per-step numbers of the GPU run against the limits. `step_s` is the measured time
/// per step dispatch; the floor is the largest of the three limits for one step.
struct StepRatios {
    step_s: f64,
    vs_dispatch: f64,
    bandwidth_frac: f64,
    gemm_frac: f64,
    floor_s: f64,
    vs_floor: f64,
}

fn step_ratios(s: &Shape, step_s: f64, l: &HardwareLimits) -> StepRatios {
    let bw_s = s.step_weight_bytes() / l.copy.bytes_per_s;
    let gemm_s = s.step_flops() / l.gemm.flops_per_s;
    let floor_s = l.dispatch.seconds.max(bw_s).max(gemm_s);
    StepRatios {
        step_s,
        vs_dispatch: step_s / l.dispatch.seconds,
        bandwidth_frac: bw_s / step_s,
        gemm_frac: gemm_s / step_s,
        floor_s,
        vs_floor: step_s / floor_s,
    }
}

fn print_header() {
    println!(
        "{:<16} {:<26} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8} | {:>8} {:>7} {:>6} {:>6} {:>8} {:>7}",
        "shape",
        "dims",
        "CPU ms",
        "GPU ms",
        "kern ms",
        "CPU GF",
        "GPU GF",
        "GPU/CPU",
        "max|Δ|",
        "step µs",
        "/disp",
        "BW%",
        "GEMM%",
        "floor µs",
        "/floor"
    );
}

fn fmt_opt(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "-"),
    }
}

fn print_row(s: &Shape, r: &Row, l: Option<&HardwareLimits>) {
    let gf = |t: Option<f64>| t.map(|t| s.flops() / t / 1e9);
    let speedup = r.cpu_s.zip(r.gpu_s).map(|(c, g)| c / g);
    let mut line = format!(
        "{:<16} {:<26} {} {} {} {} {} {} {:>8} |",
        s.name,
        s.describe(),
        fmt_opt(r.cpu_s.map(|t| t * 1e3), 9, 2),
        fmt_opt(r.gpu_s.map(|t| t * 1e3), 9, 2),
        fmt_opt(r.kernel.map(|k| k.total_s() * 1e3), 9, 2),
        fmt_opt(gf(r.cpu_s), 7, 1),
        fmt_opt(gf(r.gpu_s), 7, 1),
        fmt_opt(speedup, 7, 2),
        r.max_diff
            .map(|d| format!("{d:.1e}"))
            .unwrap_or_else(|| "-".into()),
    );
    if let (Some(step), Some(l)) = (r.step_s(s), l) {
        let q = step_ratios(s, step, l);
        line += &format!(
            " {:>8.1} {:>7.1} {:>5.1}% {:>5.1}% {:>8.1} {:>7.1}",
            q.step_s * 1e6,
            q.vs_dispatch,
            100.0 * q.bandwidth_frac,
            100.0 * q.gemm_frac,
            q.floor_s * 1e6,
            q.vs_floor
        );
    }
    println!("{line}");
}

fn row_json(s: &Shape, r: &Row, l: Option<&HardwareLimits>) -> Value {
    let mut v = json!({
        "shape": s.name,
        "t": s.t, "b": s.b, "input": s.input, "hidden": s.hidden,
        "layers": s.layers, "bidirectional": s.bidirectional,
        "flops": s.flops(),
        "cpu_ms": r.cpu_s.map(|t| t * 1e3),
        "gpu_ms": r.gpu_s.map(|t| t * 1e3),
        "gpu_kernel_ms": r.kernel.map(|k| k.total_s() * 1e3),
        "gpu_projection_ms": r.kernel.map(|k| k.projection_s * 1e3),
        "gpu_steps_ms": r.kernel.map(|k| k.steps_s * 1e3),
        "step_time_from": if r.kernel.is_some() { "timestamps" } else { "wall" },
        "cpu_gflop_per_s": r.cpu_s.map(|t| s.flops() / t / 1e9),
        "gpu_gflop_per_s": r.gpu_s.map(|t| s.flops() / t / 1e9),
        "gpu_speedup_over_cpu": r.cpu_s.zip(r.gpu_s).map(|(c, g)| c / g),
        "max_abs_diff": r.max_diff,
    });
    if let (Some(step), Some(l)) = (r.step_s(s), l) {
        let q = step_ratios(s, step, l);
        v["step_us"] = json!(q.step_s * 1e6);
        v["step_over_empty_dispatch"] = json!(q.vs_dispatch);
        v["bandwidth_fraction"] = json!(q.bandwidth_frac);
        v["gemm_fraction"] = json!(q.gemm_frac);
        v["floor_us"] = json!(q.floor_s * 1e6);
        v["step_over_floor"] = json!(q.vs_floor);
    }
    v
}

//! `lstm-bench`: CPU path vs GPU path on the standard shapes, each result set against
//! the adapter's limits measured in the same run (see `lstm_wgpu::gpu::probe`).
//!
//! Every row runs both paths on the same seeded weights and inputs, checks the outputs
//! against each other, and reports medians after a warm-up run.
//!
//! - `args`: the command line;
//! - `measure`: timing and the forward of one shape on both paths;
//! - `stream`: the per-step latency of a stateful stream on both paths;
//! - `family`: GRU and LSTMP rows (S1–S3) on both paths;
//! - `train`: one training step of the seed model on both paths;
//! - `report`: the table and the JSON document.

mod args;
mod family;
mod measure;
mod report;
mod stream;
mod train;

use family::Family;

use std::path::Path;
use std::sync::Arc;

use clap::Parser;
use lstm_wgpu::bench::probe::{self, HardwareLimits, ProbeSizes};
use lstm_wgpu::{cpu, GpuContext};
use serde_json::{json, Value};

use args::{Args, Kernels};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on headless
    // machines; give them a harmless value (as the lstm-wgpu binary does).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    if let Err(e) = run(&Args::parse()) {
        eprintln!("{}", lstm_wgpu::error::report(e.as_ref()));
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<()> {
    let shapes = a.selected_shapes();
    if let Some(n) = a.threads {
        cpu::set_threads(n);
    }
    if a.list {
        for s in &shapes {
            println!("{:<18} {}", s.name, s.describe());
        }
        return Ok(());
    }
    let ctx = gpu_context(a)?;
    print_setup(a, ctx.as_deref());
    let limits = match (&ctx, a.no_probes) {
        (Some(ctx), false) => Some(measure_limits(a, ctx)?),
        _ => None,
    };
    print_legend(a);
    report::print_header();
    let mut rows_json = Vec::new();
    let mut plans = Vec::new();
    for shape in &shapes {
        let row = measure::bench_shape(a, ctx.as_ref(), shape)?;
        report::print_row(shape, &row, limits.as_ref());
        rows_json.push(report::row_json(shape, &row, limits.as_ref()));
        plans.push((shape, row.plan));
    }
    report::print_plans(&plans);
    let families = [
        (a.no_gru, Family::Gru),
        (a.no_lstmp, Family::Lstmp),
        (a.no_f16, Family::LstmF16),
    ];
    let [gru, lstmp, f16] = families.map(|(skip, f)| match skip {
        true => Ok(Value::Null),
        false => family::bench_family(a, f, ctx.as_ref(), &shapes),
    });
    let (gru, lstmp, f16) = (gru?, lstmp?, f16?);
    let training = if a.no_train {
        Value::Null
    } else {
        train::bench_training(a, ctx.as_ref())?
    };
    let streaming = if a.no_stream {
        Value::Null
    } else {
        stream::bench_stream(a, ctx.as_ref())?
    };
    if let Some(path) = &a.json {
        let doc = json!({
            "training_step": training,
            "stream_step": streaming,
            "gru_rows": gru,
            "lstmp_rows": lstmp,
            "f16_rows": f16,
            "adapter": ctx.as_ref().map(|c| c.describe()),
            "software_adapter": ctx.as_ref().map(|c| c.is_software()),
            "timestamps": ctx.as_ref().map(|c| c.has_timestamps()),
            "shuffle_lanes": ctx.as_ref().map(|c| c.shuffle_lanes()),
            "repeats": a.repeats,
            "limits": limits.as_ref().map(report::limits_json),
            "rows": rows_json,
        });
        write_json(path, &doc)?;
    }
    Ok(())
}

/// The GPU context with the kernel forms `--kernels` asks for; `None` with `--cpu-only`.
fn gpu_context(a: &Args) -> Result<Option<Arc<GpuContext>>> {
    if a.cpu_only {
        return Ok(None);
    }
    let mut ctx = GpuContext::new()?;
    ctx.set_split_k(!a.no_split_k);
    match a.kernels {
        Kernels::Auto => {}
        Kernels::Hardware => ctx.set_software_kernels(false),
        Kernels::Software => ctx.set_software_kernels(true),
        Kernels::SoftwarePlain => {
            ctx.set_software_kernels(true);
            ctx.set_quad_forms(false);
        }
    }
    Ok(Some(Arc::new(ctx)))
}

/// What runs where: the CPU path's threads and clock, the adapter and its kernel forms.
fn print_setup(a: &Args, ctx: Option<&GpuContext>) {
    println!("lstm-bench — LSTM forward, CPU path vs GPU path, f32, no peepholes");
    println!(
        "CPU path: lstm_wgpu::cpu::CpuLstm (weights packed once), {} thread(s), timed by {}",
        cpu::threads(),
        if a.thread_clock {
            "the thread's on-CPU time (--thread-clock)"
        } else {
            "wall clock"
        }
    );
    let Some(ctx) = ctx else { return };
    println!("GPU adapter: {}", ctx.describe());
    if ctx.is_software() {
        println!("  SOFTWARE adapter: the \"GPU\" numbers below are the same CPU running compiled shaders");
    }
    println!(
        "  kernel forms: {}",
        if ctx.software_kernels() && ctx.quad_forms() {
            "software-adapter (barrier-free, written out: matmul *_quads, step_quads, step_backward_quads, where the shape allows; else main_rows, step_units / step_rows)"
        } else if ctx.software_kernels() {
            "software-adapter, plain (barrier-free: matmul main_rows, step_units / step_rows)"
        } else {
            "hardware (tiled, workgroup memory: matmul main, step_gemv / step_tiled)"
        }
    );
    println!(
        "  subgroups: {}",
        match ctx.shuffle_lanes() {
            1 => "not used (none on this adapter, turned off by LSTM_SUBGROUPS=0, or the probe failed)".to_string(),
            n => format!("step_gemv (the hardware form at B ≤ 8) sums {n} neighbouring lanes by shuffles"),
        }
    );
    if !ctx.software_kernels() {
        let split = match ctx.split_k() {
            true => "split over T·B where they have few tiles",
            false => "not split (--no-split-k)",
        };
        println!("  weight gradients (training): {split}");
    }
    println!(
        "  timestamp queries: {}",
        if ctx.has_timestamps() {
            "yes"
        } else {
            "no (kernel time not reported)"
        }
    );
}

/// The adapter's limits (dispatch, bandwidth, GEMM), measured and printed.
fn measure_limits(a: &Args, ctx: &Arc<GpuContext>) -> Result<HardwareLimits> {
    let sizes = if a.quick {
        ProbeSizes::quick()
    } else {
        ProbeSizes::full()
    };
    let l = probe::measure_limits(ctx, sizes)?;
    report::print_limits(&l);
    Ok(l)
}

/// How to read the table.
fn print_legend(a: &Args) {
    println!(
        "timing: median of {} runs after a warm-up (at least 3 for runs over {} s); GPU ms is wall time incl. upload, submit and readback",
        a.repeats, a.slow_seconds
    );
    println!("GF: GFLOP/s, 2·T·B·4H·(I+H) per layer-direction; GPU/CPU: speedup, CPU ms / GPU ms; max|Δ|: largest |GPU − CPU| over y, h_n, c_n");
    println!("kern ms: GPU timestamps (projection + steps passes); step µs: step passes / (T·L·D), or wall / (T·L·D) without timestamps");
    println!("/disp: step / empty dispatch; BW%: weight bytes per step at copy bandwidth / step; GEMM%: step FLOPs at the GEMM rate / step; /floor: step / max of the three");
    println!();
}

fn write_json(path: &Path, doc: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| format!("--json: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("--json {}: {e}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

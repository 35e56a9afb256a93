//! The table and the JSON document: each row against the adapter's measured limits.

use lstm_wgpu::bench::probe::HardwareLimits;
use lstm_wgpu::bench::Shape;
use serde_json::{json, Value};

use crate::measure::Row;

pub fn print_limits(l: &HardwareLimits) {
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

pub fn limits_json(l: &HardwareLimits) -> Value {
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

pub fn print_header() {
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

pub fn fmt_opt(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "-"),
    }
}

pub fn print_row(s: &Shape, r: &Row, l: Option<&HardwareLimits>) {
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

pub fn row_json(s: &Shape, r: &Row, l: Option<&HardwareLimits>) -> Value {
    let mut v = json!({
        "shape": s.name,
        "t": s.t, "b": s.b, "input": s.input, "hidden": s.hidden,
        "layers": s.layers, "bidirectional": s.bidirectional,
        "flops": s.flops(),
        "cpu_ms": r.cpu_s.map(|t| t * 1e3),
        "gpu_ms": r.gpu_s.map(|t| t * 1e3),
        "gpu_kernel_ms": r.kernel.map(|k| k.total_s() * 1e3),
        "step_form": r.plan.map(|p| format!("{:?}", p.tiling)),
        "step_workgroups": r.plan.map(|p| [p.step_workgroups.0, p.step_workgroups.1]),
        "step_invocations": r.plan.map(|p| p.step_threads()),
        "dispatches_per_forward": r.plan.map(|p| p.dispatches),
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

/// Per shape, what one GPU forward launches: how much of a GPU a step can fill.
pub fn print_plans(rows: &[(&Shape, Option<lstm_wgpu::gpu::DispatchPlan>)]) {
    println!();
    println!(
        "launches per forward (step kernel form, grid = workgroups × invocations, dispatches):"
    );
    for (shape, plan) in rows {
        let Some(p) = plan else { continue };
        let (x, y) = p.step_workgroups;
        let z = match p.step_directions {
            1 => String::new(),
            n => format!("×{n}"),
        };
        println!(
            "  {:<18} {:?}: {x}×{y}{z} workgroups × {} = {} invocations per step; {} chunk(s), {} dispatches (backward: {} step dispatches)",
            shape.name,
            p.tiling,
            p.step_invocations,
            p.step_threads(),
            p.chunks,
            p.dispatches,
            p.backward_step_dispatches
        );
    }
}

//! GRU rows: the forward of a GRU (`GpuGru`, `cpu::gru_forward`) on the selected S1–S3
//! (or quick) shapes, CPU path vs GPU path, with the largest difference between them.

use std::sync::Arc;

use lstm_wgpu::bench::Shape;
use lstm_wgpu::{cpu, GpuContext, GpuGru, GruConfig, GruOptions, GruWeights};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::args::Args;
use crate::measure::median_time;
use crate::report::fmt_opt;
use crate::Result;

/// The shapes that get a GRU row: S1–S3 and the quick ones, among those selected.
fn gru_shapes(shapes: &[Shape]) -> Vec<&Shape> {
    shapes
        .iter()
        .filter(|s| ["S1", "S2", "S3"].contains(&s.name.as_str()) || s.name.starts_with('Q'))
        .collect()
}

/// Times each GRU row and prints the table; returns its JSON rows.
pub fn bench_gru(a: &Args, ctx: Option<&Arc<GpuContext>>, shapes: &[Shape]) -> Result<Value> {
    let rows = gru_shapes(shapes);
    if rows.is_empty() {
        return Ok(Value::Null);
    }
    println!("\nGRU (nn.GRU math, reset after; same timing as above)");
    println!(
        "{:<6} {:>10} {:>10} {:>8} {:>10}",
        "shape", "CPU ms", "GPU ms", "GPU/CPU", "max|Δ|"
    );
    let mut out = Vec::new();
    for s in rows {
        let cfg = GruConfig::new(s.input, s.hidden)
            .layers(s.layers)
            .bidirectional(s.bidirectional);
        let w = GruWeights::init(&cfg, a.seed)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed.wrapping_add(1));
        let x =
            Array3::from_shape_simple_fn((s.t, s.b, s.input), || rng.random_range(-1.0f32..1.0));
        let (cpu_s, cpu_out) = if a.gpu_only {
            (None, None)
        } else {
            let (t, o) = median_time(a.repeats, a.slow_seconds, a.thread_clock, || {
                cpu::gru_forward(&w, x.view(), GruOptions::default())
            })?;
            (Some(t), Some(o))
        };
        let (gpu_s, diff) = match ctx {
            Some(ctx) => {
                let gpu = GpuGru::new(Arc::clone(ctx), &w)?;
                let (t, o) = median_time(a.repeats, a.slow_seconds, false, || {
                    gpu.forward(x.view(), GruOptions::default())
                })?;
                let diff = cpu_out.as_ref().map(|want| {
                    let d = |p: &Array3<f32>, q: &Array3<f32>| {
                        p.iter().zip(q).fold(0f32, |m, (a, b)| m.max((a - b).abs()))
                    };
                    d(&o.y, &want.y).max(d(&o.h_n, &want.h_n))
                });
                (Some(t), diff)
            }
            None => (None, None),
        };
        let speedup = cpu_s.zip(gpu_s).map(|(c, g)| c / g);
        println!(
            "{:<6} {} {} {} {:>10}",
            s.name,
            fmt_opt(cpu_s.map(|t| t * 1e3), 10, 1),
            fmt_opt(gpu_s.map(|t| t * 1e3), 10, 1),
            fmt_opt(speedup, 8, 2),
            diff.map_or("-".into(), |d| format!("{d:.1e}"))
        );
        out.push(json!({ "shape": s.name, "cpu_ms": cpu_s.map(|t| t * 1e3), "gpu_ms": gpu_s.map(|t| t * 1e3), "max_abs_diff": diff }));
    }
    Ok(Value::Array(out))
}

//! The LSTM's family and variants: the forward of a GRU (`GpuGru`, `cpu::gru_forward`),
//! an LSTM with a projection `P = H/4` (`GpuLstmp`, `cpu::lstmp_forward`) and an LSTM
//! with f16 recurrent weights (`GpuLstm::new_f16`, against the f32 CPU path) on the
//! selected S1–S3 (or quick) shapes, CPU path vs GPU path, with the largest difference.

use std::sync::Arc;

use lstm_wgpu::bench::Shape;
use lstm_wgpu::{
    cpu, ForwardOptions, GpuContext, GpuGru, GpuLstm, GpuLstmp, GruConfig, GruOptions, GruWeights,
    LstmConfig, LstmWeights, LstmpConfig, LstmpWeights,
};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::args::Args;
use crate::measure::median_time;
use crate::report::fmt_opt;
use crate::Result;

/// The cells that get rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Gru,
    Lstmp,
    /// The LSTM with f16 recurrent weights on the GPU (`GpuLstm::new_f16`) against the
    /// f32 CPU path: the GPU column's time and its error against f32.
    LstmF16,
}

/// A forward from `x`, returning every output (y, h_n, …).
type Run<'a> = Box<dyn Fn(&Array3<f32>) -> lstm_wgpu::Result<Vec<Array3<f32>>> + 'a>;

/// The shapes that get a row: S1–S3 and the quick ones, among those selected; for f16
/// weights also every B = 1 shape, the step that streams its weights (what f16 halves).
fn family_shapes(family: Family, shapes: &[Shape]) -> Vec<&Shape> {
    let standard = |s: &Shape| ["S1", "S2", "S3"].contains(&s.name.as_str());
    let single = |s: &Shape| family == Family::LstmF16 && s.b == 1;
    shapes
        .iter()
        .filter(|s| standard(s) || single(s) || s.name.starts_with('Q'))
        .collect()
}

/// The CPU and (with a context) GPU forwards of `family` on shape `s`.
fn runs<'a>(
    family: Family,
    s: &Shape,
    seed: u64,
    ctx: Option<&Arc<GpuContext>>,
) -> Result<(Run<'a>, Option<Run<'a>>)> {
    Ok(match family {
        Family::Gru => {
            let cfg = GruConfig::new(s.input, s.hidden)
                .layers(s.layers)
                .bidirectional(s.bidirectional);
            let w = GruWeights::init(&cfg, seed)?;
            let gpu = ctx.map(|c| GpuGru::new(Arc::clone(c), &w)).transpose()?;
            let gpu: Option<Run> = gpu.map(|g| -> Run {
                Box::new(move |x| {
                    let o = g.forward(x.view(), GruOptions::default())?;
                    Ok(vec![o.y, o.h_n])
                })
            });
            let cpu: Run = Box::new(move |x| {
                let o = cpu::gru_forward(&w, x.view(), GruOptions::default())?;
                Ok(vec![o.y, o.h_n])
            });
            (cpu, gpu)
        }
        Family::LstmF16 => {
            let cfg = LstmConfig::new(s.input, s.hidden)
                .layers(s.layers)
                .bidirectional(s.bidirectional);
            let w = LstmWeights::init(&cfg, seed)?;
            let gpu = ctx
                .map(|c| GpuLstm::new_f16(Arc::clone(c), &w))
                .transpose()?;
            let gpu: Option<Run> = gpu.map(|g| -> Run {
                Box::new(move |x| {
                    let o = g.forward(x.view(), ForwardOptions::default())?;
                    Ok(vec![o.y, o.h_n, o.c_n])
                })
            });
            let cpu: Run = Box::new(move |x| {
                let o = cpu::forward(&w, x.view(), ForwardOptions::default())?;
                Ok(vec![o.y, o.h_n, o.c_n])
            });
            (cpu, gpu)
        }
        Family::Lstmp => {
            let cfg = LstmpConfig::new(s.input, s.hidden, (s.hidden / 4).max(1))
                .layers(s.layers)
                .bidirectional(s.bidirectional);
            let w = LstmpWeights::init(&cfg, seed)?;
            let gpu = ctx.map(|c| GpuLstmp::new(Arc::clone(c), &w)).transpose()?;
            let gpu: Option<Run> = gpu.map(|g| -> Run {
                Box::new(move |x| {
                    let o = g.forward(x.view(), ForwardOptions::default())?;
                    Ok(vec![o.y, o.h_n, o.c_n])
                })
            });
            let cpu: Run = Box::new(move |x| {
                let o = cpu::lstmp_forward(&w, x.view(), ForwardOptions::default())?;
                Ok(vec![o.y, o.h_n, o.c_n])
            });
            (cpu, gpu)
        }
    })
}

/// Times each row of `family` and prints the table; returns its JSON rows.
pub fn bench_family(
    a: &Args,
    family: Family,
    ctx: Option<&Arc<GpuContext>>,
    shapes: &[Shape],
) -> Result<Value> {
    let rows = family_shapes(family, shapes);
    if rows.is_empty() {
        return Ok(Value::Null);
    }
    let title = match family {
        Family::Gru => "GRU (nn.GRU math, reset after",
        Family::Lstmp => "LSTMP (nn.LSTM proj_size = H/4; GPU: folded, see BENCHMARKS.md §14",
        Family::LstmF16 => "LSTM, f16 recurrent weights on the GPU (max|Δ| against f32 on the CPU",
    };
    println!("\n{title}; same timing as above)");
    println!(
        "{:<16} {:>10} {:>10} {:>8} {:>10}",
        "shape", "CPU ms", "GPU ms", "GPU/CPU", "max|Δ|"
    );
    let mut out = Vec::new();
    for s in rows {
        let (cpu_run, gpu_run) = runs(family, s, a.seed, ctx)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed.wrapping_add(1));
        let x =
            Array3::from_shape_simple_fn((s.t, s.b, s.input), || rng.random_range(-1.0f32..1.0));
        let (cpu_s, cpu_out) = if a.gpu_only {
            (None, None)
        } else {
            let (t, o) = median_time(a.repeats, a.slow_seconds, a.thread_clock, || cpu_run(&x))?;
            (Some(t), Some(o))
        };
        let (gpu_s, diff) = match gpu_run {
            Some(run) => {
                let (t, o) = median_time(a.repeats, a.slow_seconds, false, || run(&x))?;
                let diff = cpu_out.as_ref().map(|want| max_diff(&o, want));
                (Some(t), diff)
            }
            None => (None, None),
        };
        let speedup = cpu_s.zip(gpu_s).map(|(c, g)| c / g);
        println!(
            "{:<16} {} {} {} {:>10}",
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

/// The largest element difference over matching outputs.
fn max_diff(got: &[Array3<f32>], want: &[Array3<f32>]) -> f32 {
    let d = |p: &Array3<f32>, q: &Array3<f32>| {
        p.iter().zip(q).fold(0f32, |m, (a, b)| m.max((a - b).abs()))
    };
    got.iter()
        .zip(want)
        .map(|(p, q)| d(p, q))
        .fold(0.0, f32::max)
}

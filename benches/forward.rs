//! `cargo bench`: forward pass, CPU path and GPU path, on the benchmark shapes.
//!
//! By default the quick shapes (seconds on a software adapter); `LSTM_BENCH_SHAPES`
//! picks others by name (comma-separated, e.g. `S1,S3`, or `standard` for all of the
//! standard set). `lstm-bench` reports the same shapes as a table against the
//! adapter's limits; these benches give criterion's statistics and change tracking.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lstm_wgpu::bench::{all_shapes, quick_shapes, standard_shapes, Shape};
use lstm_wgpu::{cpu, ForwardOptions, GpuContext, GpuLstm, LstmWeights};
use ndarray::Array3;
use rand::{Rng, SeedableRng};

/// The shapes `LSTM_BENCH_SHAPES` names; an unknown name is an error (not a panic).
fn shapes() -> Result<Vec<Shape>, String> {
    match std::env::var("LSTM_BENCH_SHAPES") {
        Ok(v) if v == "standard" => Ok(standard_shapes()),
        Ok(v) if !v.is_empty() => {
            let all = all_shapes();
            v.split(',')
                .map(|n| {
                    all.iter()
                        .find(|s| s.name.eq_ignore_ascii_case(n.trim()))
                        .cloned()
                        .ok_or_else(|| format!("LSTM_BENCH_SHAPES: unknown shape {n:?}"))
                })
                .collect()
        }
        _ => Ok(quick_shapes()),
    }
}

fn input(s: &Shape) -> Array3<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    Array3::from_shape_simple_fn((s.t, s.b, s.input), || rng.random_range(-1.0f32..1.0))
}

fn forward(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e) => {
            eprintln!("no GPU adapter ({e}): CPU benches only");
            None
        }
    };
    let shapes = shapes().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let mut group = c.benchmark_group("forward");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(3));
    for s in shapes {
        let id = format!("{} {}", s.name, s.describe());
        let w = match LstmWeights::init(&s.config(), 0) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("{id}: skipped ({e})");
                continue;
            }
        };
        let x = input(&s);
        let opts = ForwardOptions::default;
        if let Err(e) = cpu::forward(&w, x.view(), opts()) {
            eprintln!("{id}: skipped ({e})");
            continue;
        }
        group.bench_function(BenchmarkId::new("cpu", &id), |b| {
            b.iter(|| cpu::forward(&w, x.view(), opts()))
        });
        let Some(ctx) = &ctx else { continue };
        // A shape the device cannot hold (binding or workgroup limits) is skipped.
        let gpu = GpuLstm::new(Arc::clone(ctx), &w).and_then(|g| {
            g.forward(x.view(), opts())?;
            Ok(g)
        });
        match gpu {
            Ok(gpu) => {
                group.bench_function(BenchmarkId::new("gpu", &id), |b| {
                    b.iter(|| gpu.forward(x.view(), opts()))
                });
            }
            Err(e) => eprintln!("{id}: GPU skipped ({e})"),
        }
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);

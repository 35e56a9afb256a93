//! One training step of the seed model, CPU path vs GPU path.

use std::sync::Arc;

use lstm_wgpu::train::{Batch, Classifier, ClassifierParams, CpuClassifier, TrainConfig};
use lstm_wgpu::GpuContext;
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::args::Args;
use crate::measure::median_time;
use crate::report::fmt_opt;
use crate::Result;

/// One training step of the seed model (LSTM(256) → Dense(10) on 28×28 MNIST-shaped
/// input, batch 128, softmax cross-entropy, Adam), CPU path vs GPU path, same weights
/// and batch. `--quick`: hidden 32, batch 16. The GPU step reads back its loss, so the
/// wall time includes the sync.
pub fn bench_training(a: &Args, ctx: Option<&Arc<GpuContext>>) -> Result<Value> {
    let (b, h) = if a.quick { (16, 32) } else { (128, 256) };
    let lstm = lstm_wgpu::LstmConfig::new(28, h).batch_first(true);
    let params = ClassifierParams::init(&lstm, 10, 1.0, a.seed)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed.wrapping_add(7));
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

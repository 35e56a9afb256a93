//! The latency of a stateful stream: one time step pushed at a time (real-time audio or
//! sensor use), CPU path vs GPU path (state resident on the GPU between pushes).

use std::sync::Arc;

use lstm_wgpu::cpu::CpuStream;
use lstm_wgpu::{GpuContext, GpuLstm, LstmConfig, LstmWeights};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::args::Args;
use crate::measure::median_time;
use crate::report::fmt_opt;
use crate::Result;

/// Median wall time of one push of one step at B = 1, I = H = 256 (`--quick`: H = 32),
/// each push including its upload and the readback of its output.
pub fn bench_stream(a: &Args, ctx: Option<&Arc<GpuContext>>) -> Result<Value> {
    let h = if a.quick { 32 } else { 256 };
    let w = LstmWeights::init(&LstmConfig::new(h, h), a.seed)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed.wrapping_add(11));
    let x = Array3::from_shape_simple_fn((1, 1, h), || rng.random_range(-1.0f32..1.0));
    // A push of one step is short: time 100 of them per measurement.
    const PUSHES: usize = 100;
    let cpu_s = if a.gpu_only {
        None
    } else {
        let mut s = CpuStream::new(&w, 1)?;
        let t = median_time(a.repeats, a.slow_seconds, a.thread_clock, || {
            (0..PUSHES).try_for_each(|_| s.push(x.view()).map(drop))
        })?;
        Some(t.0 / PUSHES as f64)
    };
    let gpu_s = match ctx {
        Some(ctx) => {
            let lstm = GpuLstm::new(ctx.clone(), &w)?;
            let mut s = lstm.stream(1)?;
            let t = median_time(a.repeats, a.slow_seconds, false, || {
                (0..PUSHES).try_for_each(|_| s.push(x.view()).map(drop))
            })?;
            Some(t.0 / PUSHES as f64)
        }
        None => None,
    };
    println!(
        "stream, one step per push (B=1 I={h} H={h}, state resident): CPU {} µs, GPU {} µs per step",
        fmt_opt(cpu_s.map(|s| s * 1e6), 0, 1).trim(),
        fmt_opt(gpu_s.map(|s| s * 1e6), 0, 1).trim()
    );
    Ok(json!({ "hidden": h, "cpu_us": cpu_s.map(|s| s * 1e6), "gpu_us": gpu_s.map(|s| s * 1e6) }))
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use lstm_wgpu::{GpuContext, LstmConfig, LstmState};
use ndarray::{Array, Array3, Dimension, ShapeBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// GPU vs CPU, absolute part: both compute in f32 but sum the K-term dot products in a
/// different order and use different exp/tanh implementations (a few ULP each); the
/// error then travels through up to T recurrent steps and L layers. Measured maxima on
/// lavapipe are ~1e-6; 2e-5 leaves room for other adapters' transcendental accuracy.
pub const GPU_ATOL: f32 = 2e-5;
/// Relative part, for the cell state, which can grow past 1.
pub const GPU_RTOL: f32 = 1e-4;
/// CPU vs PyTorch: same arithmetic in f32, different summation order only (measured ≤ 3e-7).
pub const TORCH_ATOL: f32 = 1e-5;
pub const TORCH_RTOL: f32 = 1e-5;

/// Compares elementwise; on failure prints the worst element and the first few mismatches.
/// NaN anywhere (e.g. an output element a kernel never wrote) is a mismatch.
pub fn assert_close<D: Dimension>(
    name: &str,
    got: &Array<f32, D>,
    want: &Array<f32, D>,
    atol: f32,
    rtol: f32,
) {
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    let mut bad = Vec::new();
    let mut worst = 0.0f32;
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        let err = (g - w).abs();
        worst = if err.is_nan() {
            f32::NAN
        } else {
            worst.max(err)
        };
        let within = err <= atol + rtol * w.abs(); // false for NaN
        if !within && bad.len() < 5 {
            bad.push(format!("  [{i}] got {g} want {w}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: mismatches (atol {atol}, rtol {rtol}), max err {worst}:\n{}",
        bad.join("\n")
    );
}

/// Largest |a - b|.
pub fn max_diff<D: Dimension>(a: &Array<f32, D>, b: &Array<f32, D>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Seeded uniform(-1, 1) array; never zeros.
pub fn random<Sh: ShapeBuilder>(shape: Sh, seed: u64) -> Array<f32, Sh::Dim> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

/// A random input in the config's layout.
pub fn random_input(cfg: &LstmConfig, t: usize, b: usize, seed: u64) -> Array3<f32> {
    if cfg.batch_first {
        random((b, t, cfg.input_size), seed)
    } else {
        random((t, b, cfg.input_size), seed)
    }
}

/// A random initial state `[L·D, B, H]`.
pub fn random_state(cfg: &LstmConfig, b: usize, seed: u64) -> LstmState {
    let shape = (cfg.num_layers * cfg.num_directions(), b, cfg.hidden_size);
    LstmState {
        h: random(shape, seed),
        c: random(shape, seed + 1).mapv(|v| 2.0 * v),
    }
}

/// A fresh GPU context, or `None` (after a loud message) when this machine has no adapter.
/// With `LSTM_REQUIRE_GPU=1` a missing adapter is a test failure instead.
pub fn try_context() -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if std::env::var("LSTM_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("LSTM_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            eprintln!("\n!!!!! SKIPPING GPU TEST: no GPU adapter ({e}). Set LSTM_REQUIRE_GPU=1 to make this a failure. !!!!!\n");
            None
        }
    }
}

/// The context shared by a test binary's tests (creating devices is slow on lavapipe).
pub fn shared_context() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = try_context().map(Arc::new);
        if let Some(c) = &ctx {
            eprintln!("GPU adapter: {}", c.describe());
        }
        ctx
    })
    .clone()
}

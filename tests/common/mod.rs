//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use lstm_wgpu::{GpuContext, LstmConfig, LstmOutput, LstmState};
use ndarray::{Array, Array1, Array2, Array3, Dimension, ShapeBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// GPU vs CPU, absolute part: both compute in f32 but sum the K-term dot products in a
/// different order and use different exp/tanh implementations (a few ULP each); the
/// error then travels through up to T recurrent steps and L layers. Measured maxima on
/// lavapipe are ~1e-6; 2e-5 leaves room for other adapters' transcendental accuracy.
pub const GPU_ATOL: f32 = 2e-5;
/// Relative part, for the cell state, which can grow past 1.
pub const GPU_RTOL: f32 = 1e-4;
/// GPU vs CPU gradients: they sum T·B products and pass through T steps of recurrence,
/// so a little more room than the forward's tolerance.
pub const GRAD_ATOL: f32 = 1e-4;
pub const GRAD_RTOL: f32 = 1e-3;
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

/// Runs `f` on a context of its own in each kernel form (`software_kernels` off, then on),
/// whatever the adapter is: `matmul.wgsl` and `lstm_step_backward.wgsl` have a tiled
/// `main` and software-adapter forms (`main_rows`, or the written-out `*_quads` where
/// the shape allows), and both must match the CPU twin.
pub fn for_each_form(mut f: impl FnMut(&GpuContext, &str)) {
    let Some(mut ctx) = try_context() else { return };
    for software in [false, true] {
        ctx.set_software_kernels(software);
        f(&ctx, if software { "software" } else { "main" });
    }
}

/// Which rows of a batch of `b` are live in a single-step kernel test: every third row
/// from row 1 is past its sequence's length (B = 1 stays live).
pub fn active_rows(b: usize) -> Vec<bool> {
    (0..b).map(|r| r % 3 != 1).collect()
}

/// Seeded gate activations `[B, 4H]` in i, f, g, o blocks: σ of uniform(-3, 3) for i, f,
/// o and tanh for g, as a forward step stores them; never 0, 1 or -1 exactly.
pub fn random_gates(b: usize, h: usize, seed: u64) -> Array2<f32> {
    let z = random((b, 4 * h), seed).mapv(|v| 3.0 * v);
    Array2::from_shape_fn((b, 4 * h), |(r, q)| {
        let v = z[[r, q]];
        if q / h == 2 {
            v.tanh()
        } else {
            1.0 / (1.0 + (-v).exp())
        }
    })
}

/// [`assert_close`] for host slices (one tensor of a list).
pub fn assert_close_slice(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    let (got, want) = (Array1::from(got.to_vec()), Array1::from(want.to_vec()));
    assert_close(name, &got, &want, atol, rtol);
}

/// Random window lengths (1 to 7) that add up to `t`: a stream's pushes.
pub fn random_split(t: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut left = t;
    while left > 0 {
        let n = rng.random_range(1..=left.min(7));
        out.push(n);
        left -= n;
    }
    out
}

/// Pushes `x` through `push` in windows of `split` along `time` (axis 0 time-major, 1
/// batch-first); returns the outputs joined on time.
pub fn push_all(
    x: &Array3<f32>,
    time: ndarray::Axis,
    split: &[usize],
    mut push: impl FnMut(ndarray::ArrayView3<f32>) -> Array3<f32>,
) -> Array3<f32> {
    let mut at = 0;
    let mut parts = Vec::new();
    for &n in split {
        parts.push(push(x.slice_axis(time, (at..at + n).into())));
        at += n;
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(time, &views).unwrap()
}

/// `y`, `h_n` and `c_n` of a GPU forward within the GPU tolerance of the CPU path's.
pub fn assert_output_close(tag: &str, got: &LstmOutput, want: &LstmOutput) {
    assert_close(&format!("y {tag}"), &got.y, &want.y, GPU_ATOL, GPU_RTOL);
    assert_close(
        &format!("h_n {tag}"),
        &got.h_n,
        &want.h_n,
        GPU_ATOL,
        GPU_RTOL,
    );
    assert_close(
        &format!("c_n {tag}"),
        &got.c_n,
        &want.c_n,
        GPU_ATOL,
        GPU_RTOL,
    );
}

/// Every gradient of a BPTT (dx, dh0, dc0, and per layer-direction dW_ih, dW_hh, the bias
/// and the peepholes) within the gradient tolerances of the reference's.
pub fn assert_gradients_close(
    tag: &str,
    got: &lstm_wgpu::cpu::Gradients,
    want: &lstm_wgpu::cpu::Gradients,
) {
    assert_close(
        &format!("dx {tag}"),
        &got.dx,
        &want.dx,
        GRAD_ATOL,
        GRAD_RTOL,
    );
    assert_close(
        &format!("dh0 {tag}"),
        &got.dh0,
        &want.dh0,
        GRAD_ATOL,
        GRAD_RTOL,
    );
    assert_close(
        &format!("dc0 {tag}"),
        &got.dc0,
        &want.dc0,
        GRAD_ATOL,
        GRAD_RTOL,
    );
    for (ld, (g, c)) in got
        .params
        .layers
        .iter()
        .zip(&want.params.layers)
        .enumerate()
    {
        assert_close(
            &format!("dW_ih[{ld}] {tag}"),
            &g.w_ih,
            &c.w_ih,
            GRAD_ATOL,
            GRAD_RTOL,
        );
        assert_close(
            &format!("dW_hh[{ld}] {tag}"),
            &g.w_hh,
            &c.w_hh,
            GRAD_ATOL,
            GRAD_RTOL,
        );
        if let (Some(gb), Some(cb)) = (&g.b_ih, &c.b_ih) {
            assert_close(&format!("db[{ld}] {tag}"), gb, cb, GRAD_ATOL, GRAD_RTOL);
        }
        match (&g.peephole, &c.peephole) {
            (
                lstm_wgpu::PeepholeWeights::Diagonal(gp),
                lstm_wgpu::PeepholeWeights::Diagonal(cp),
            ) => assert_close(&format!("dp[{ld}] {tag}"), gp, cp, GRAD_ATOL, GRAD_RTOL),
            (lstm_wgpu::PeepholeWeights::Full(gp), lstm_wgpu::PeepholeWeights::Full(cp)) => {
                assert_close(&format!("dW_ch[{ld}] {tag}"), gp, cp, GRAD_ATOL, GRAD_RTOL)
            }
            (lstm_wgpu::PeepholeWeights::None, lstm_wgpu::PeepholeWeights::None) => {}
            _ => panic!("peephole kinds differ"),
        }
    }
}

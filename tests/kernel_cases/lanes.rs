//! `lanes_portable.wgsl` and `lanes_subgroup.wgsl` (see tests/kernels.rs): the split-K
//! step (`step_gemv`, and the reset-before GRU's `step_reset_n`) summing its lanes through
//! workgroup memory, or by subgroup shuffles on a context that has them. Each form against
//! the CPU in every cell, and the shuffled one with the portable one's bits.

use super::lstm_step_f16::rounded;
use super::step_quads::assert_same_bits;
use crate::common::*;
use lstm_wgpu::cpu::{self, gru_step::input_bias};
use lstm_wgpu::gpu::kernels::{self, lstm_step::StepOutput};
use lstm_wgpu::{
    GpuContext, GpuOptions, GruConfig, GruWeights, LstmConfig, LstmWeights, Peephole, StepTiling,
};
use ndarray::Array2;

/// (I, H, B): one unit of a 2-unit workgroup; H odd and past 32 lanes of k; B past the
/// 4-row block (5, 9: the last block partial).
const SHAPES: [(usize, usize, usize); 4] = [(1, 1, 1), (3, 17, 5), (2, 33, 3), (4, 65, 9)];

/// A context with the subgroups turned off: the portable form.
fn portable() -> Option<GpuContext> {
    try_context()?;
    let off = GpuOptions {
        subgroups: Some(false),
        ..Default::default()
    };
    let ctx = GpuContext::with_options(&off).unwrap();
    assert_eq!(ctx.shuffle_lanes(), 1, "subgroups turned off");
    Some(ctx)
}

/// A context with subgroup shuffles and one without, or `None` (no adapter, or one
/// without subgroups: said on stderr). An adapter that offers subgroups must pass the
/// probe: lavapipe (CI's Vulkan run) does, with 8 lanes.
fn contexts() -> Option<(GpuContext, GpuContext)> {
    let (shuffled, portable) = (try_context()?, portable()?);
    if !shuffled
        .device()
        .features()
        .contains(wgpu::Features::SUBGROUP)
    {
        eprintln!(
            "no subgroups on {}: nothing to compare",
            shuffled.describe()
        );
        return None;
    }
    let lanes = shuffled.shuffle_lanes();
    assert!(
        lanes > 1 && lanes.is_power_of_two(),
        "probe failed: {lanes} lanes"
    );
    Some((shuffled, portable))
}

/// `lanes_portable.wgsl`: every cell's split-K step with its lanes summed in workgroup
/// memory, against the CPU.
pub fn lanes_portable_cases() {
    if let Some(ctx) = portable() {
        gemv_steps(&ctx);
    }
}

/// `lanes_subgroup.wgsl`: the same steps with shuffles, against the CPU and bit for bit
/// against the portable form.
pub fn lanes_subgroup_cases() {
    let Some((shuffled, portable)) = contexts() else {
        return;
    };
    let steps = gemv_steps(&shuffled).into_iter().zip(gemv_steps(&portable));
    for ((tag, a), (_, b)) in steps {
        assert_same_bits(&format!("{tag} shuffled vs portable"), &a, &b);
    }
}

/// Every cell's `step_gemv` on `ctx` (the LSTM in three peephole modes, f16 weights where
/// the adapter can unpack them, both GRU forms), each checked against the CPU step;
/// returns the outputs, tagged.
fn gemv_steps(ctx: &GpuContext) -> Vec<(String, StepOutput)> {
    let mut out = Vec::new();
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let seed = 2900 + 10 * n as u64;
        let active = active_rows(b);
        let (h0, c0) = (random((b, h), seed + 2), random((b, h), seed + 3) * 2.0);
        for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            let w = LstmWeights::init(&LstmConfig::new(i, h).peephole(peephole), seed).unwrap();
            let lw = &w.layers[0];
            let gx = random((b, 4 * h), seed + 1);
            let (state, t) = ((h0.view(), c0.view()), StepTiling::Gemv);
            let tag = format!("LSTM {peephole:?} I={i} H={h} B={b}");
            let got = kernels::lstm_step::run(ctx, gx.view(), state, lw, &active, t, true);
            let want = cpu::lstm_step(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
            out.push(checked(tag, got.unwrap(), want));
            if ctx.has_f16_unpack() {
                let tag = format!("f16 LSTM {peephole:?} I={i} H={h} B={b}");
                let got = kernels::lstm_step_f16::run(ctx, gx.view(), state, lw, &active, t, true);
                let twin = rounded(lw);
                let want = cpu::lstm_step(gx.view(), h0.view(), c0.view(), &twin, &active);
                out.push(checked(tag, got.unwrap(), want.unwrap()));
            }
        }
        out.extend(gru_steps(ctx, (i, h, b), seed));
    }
    out
}

/// `got` after checking its new state against the CPU's `(h, c)`.
fn checked(
    tag: String,
    got: StepOutput,
    (h, c): (Array2<f32>, Array2<f32>),
) -> (String, StepOutput) {
    assert_close(&format!("h {tag}"), &got.h, &h, GPU_ATOL, GPU_RTOL);
    assert_close(&format!("c {tag}"), &got.c, &c, GPU_ATOL, GPU_RTOL);
    (tag, got)
}

/// Both GRU forms (PyTorch's, and Keras's reset-before whose second dispatch sums its
/// lanes too) against the CPU step.
fn gru_steps(ctx: &GpuContext, (i, h, b): Dims3, seed: u64) -> Vec<(String, StepOutput)> {
    let active = active_rows(b);
    let h0 = random((b, h), seed + 5);
    let mut out = Vec::new();
    for reset_after in [true, false] {
        let cfg = GruConfig::new(i, h).reset_after(reset_after);
        let w = GruWeights::init(&cfg, seed + 6).unwrap();
        let lw = &w.layers[0];
        let gx = random((b, 3 * h), seed + 7) + &input_bias(lw, reset_after);
        let tag = format!("GRU reset_after={reset_after} I={i} H={h} B={b}");
        let (x, t) = (gx.view(), StepTiling::Gemv);
        let got = match reset_after {
            true => kernels::gru_step::run(ctx, x, h0.view(), lw, &active, t, true),
            false => kernels::gru_reset_before_step::run(ctx, x, h0.view(), lw, &active, t, true),
        }
        .unwrap();
        let b_hn = cpu::gru_step::recurrent_n_bias(lw, reset_after);
        let (want, _) = cpu::gru_step(x, h0.view(), lw.w_hh.view(), b_hn.view(), reset_after);
        let want = live_or_kept(&want, &h0, &active);
        assert_close(&format!("h {tag}"), &got.h, &want, GPU_ATOL, GPU_RTOL);
        out.push((tag, got));
    }
    out
}

type Dims3 = (usize, usize, usize);

/// `new` on the live rows; past its length a row keeps `old`.
fn live_or_kept(new: &Array2<f32>, old: &Array2<f32>, active: &[bool]) -> Array2<f32> {
    let mut out = old.clone();
    for (r, _) in active.iter().enumerate().filter(|(_, &on)| on) {
        out.row_mut(r).assign(&new.row(r));
    }
    out
}

//! `lanes_subgroup.wgsl` (see tests/kernels.rs): the split-K step (`step_gemv`, and the
//! reset-before GRU's `step_reset_n`) summing its lanes by subgroup shuffles, on a
//! context that has them, against `lanes_portable.wgsl`'s workgroup-memory tree on one
//! with them turned off: the same bits in every cell, and the CPU's values.

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

/// A context with subgroup shuffles and one without, or `None` (no adapter, or one
/// without subgroups: said on stderr). An adapter that offers subgroups must pass the
/// probe: lavapipe (CI's Vulkan run) does, with 8 lanes.
fn contexts() -> Option<(GpuContext, GpuContext)> {
    let shuffled = try_context()?;
    let off = GpuOptions {
        subgroups: Some(false),
        ..Default::default()
    };
    let portable = GpuContext::with_options(&off).unwrap();
    assert_eq!(portable.shuffle_lanes(), 1, "subgroups turned off");
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

pub fn lanes_subgroup_cases() {
    let Some((shuffled, portable)) = contexts() else {
        return;
    };
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let seed = 2900 + 10 * n as u64;
        let active = active_rows(b);
        let (h0, c0) = (random((b, h), seed + 2), random((b, h), seed + 3) * 2.0);
        for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            let w = LstmWeights::init(&LstmConfig::new(i, h).peephole(peephole), seed).unwrap();
            let lw = &w.layers[0];
            let gx = random((b, 4 * h), seed + 1);
            let tag = format!("LSTM {peephole:?} I={i} H={h} B={b}");
            let run = |ctx: &GpuContext| {
                let state = (h0.view(), c0.view());
                let tiling = StepTiling::Gemv;
                kernels::lstm_step::run(ctx, gx.view(), state, lw, &active, tiling, true).unwrap()
            };
            let got = compare(&tag, run(&shuffled), run(&portable));
            let (want_h, want_c) =
                cpu::lstm_step(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
            assert_close(&format!("h {tag}"), &got.h, &want_h, GPU_ATOL, GPU_RTOL);
            assert_close(&format!("c {tag}"), &got.c, &want_c, GPU_ATOL, GPU_RTOL);
            if shuffled.has_f16_unpack() {
                let run = |ctx: &GpuContext| {
                    let state = (h0.view(), c0.view());
                    let (x, t) = (gx.view(), StepTiling::Gemv);
                    kernels::lstm_step_f16::run(ctx, x, state, lw, &active, t, true).unwrap()
                };
                compare(&format!("f16 {tag}"), run(&shuffled), run(&portable));
            }
        }
        gru_cases((&shuffled, &portable), (i, h, b), seed);
    }
}

/// Both GRU forms (PyTorch's, and Keras's reset-before whose second dispatch sums its
/// lanes too) against the CPU step.
fn gru_cases((shuffled, portable): (&GpuContext, &GpuContext), (i, h, b): Dims3, seed: u64) {
    let active = active_rows(b);
    let h0 = random((b, h), seed + 5);
    for reset_after in [true, false] {
        let cfg = GruConfig::new(i, h).reset_after(reset_after);
        let w = GruWeights::init(&cfg, seed + 6).unwrap();
        let lw = &w.layers[0];
        let gx = random((b, 3 * h), seed + 7) + &input_bias(lw, reset_after);
        let tag = format!("GRU reset_after={reset_after} I={i} H={h} B={b}");
        let run = |ctx: &GpuContext| {
            let (x, t) = (gx.view(), StepTiling::Gemv);
            match reset_after {
                true => kernels::gru_step::run(ctx, x, h0.view(), lw, &active, t, true),
                false => {
                    kernels::gru_reset_before_step::run(ctx, x, h0.view(), lw, &active, t, true)
                }
            }
            .unwrap()
        };
        let got = compare(&tag, run(shuffled), run(portable));
        let b_hn = cpu::gru_step::recurrent_n_bias(lw, reset_after);
        let (want, _) = cpu::gru_step(
            gx.view(),
            h0.view(),
            lw.w_hh.view(),
            b_hn.view(),
            reset_after,
        );
        let want = live_or_kept(&want, &h0, &active);
        assert_close(&format!("h {tag}"), &got.h, &want, GPU_ATOL, GPU_RTOL);
    }
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

/// The shuffled step's output, after checking it has the portable one's bits.
fn compare(tag: &str, shuffled: StepOutput, portable: StepOutput) -> StepOutput {
    assert_same_bits(&format!("{tag} shuffled vs portable"), &shuffled, &portable);
    shuffled
}

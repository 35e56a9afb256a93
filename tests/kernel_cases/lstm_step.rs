//! `lstm_step.wgsl` alone against `cpu::lstm_step` (see tests/kernels.rs), and its
//! default weight storage, `weights_f32.wgsl`.

use crate::common::*;
use crate::kernel_cases::lstm_step_f16::rounded;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::{GpuContext, LstmConfig, LstmWeights, Peephole, StepTiling};
use ndarray::Array2;

pub fn lstm_step_cases(ctx: &GpuContext) {
    let tilings = StepTiling::ALL;
    for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
        // (I, H, B): the cases of tests/gpu_forward.rs's former step test, plus a batch
        // past two 16-row tiles.
        let shapes = [(1, 1, 1), (3, 7, 5), (9, 33, 17), (4, 65, 2), (6, 33, 40)];
        for (n, &(i, h, b)) in shapes.iter().enumerate() {
            let seed = 7 + 10 * n as u64;
            let w = LstmWeights::init(&LstmConfig::new(i, h).peephole(peephole), seed).unwrap();
            let lw = &w.layers[0];
            let gx = random((b, 4 * h), seed + 1);
            let (h0, c0) = (random((b, h), seed + 2), random((b, h), seed + 3) * 2.0);
            let active = active_rows(b);
            let (want_h, want_c) =
                cpu::lstm_step(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
            let (_, _, want_gates) =
                cpu::lstm_step_with_gates(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
            let live = |r: usize| if active[r] { 1.0 } else { 0.0 };
            let want_y = Array2::from_shape_fn((b, h), |(r, j)| live(r) * want_h[[r, j]]);
            for tiling in tilings {
                let state = (h0.view(), c0.view());
                let got = kernels::lstm_step::run(ctx, gx.view(), state, lw, &active, tiling, true)
                    .unwrap();
                let tag = format!("{peephole:?} I={i} H={h} B={b} {tiling:?}");
                for (name, got, want) in [
                    ("h", &got.h, &want_h),
                    ("c", &got.c, &want_c),
                    ("y", &got.y, &want_y),
                    ("gates", &got.gates, &want_gates),
                    ("h_prev", &got.h_prev, &h0),
                    ("c_prev", &got.c_prev, &c0),
                ] {
                    assert_close(&format!("{name} {tag}"), got, want, GPU_ATOL, GPU_RTOL);
                }
            }
        }
    }
}

/// The default step reads every bit of its f32 weights: with weights large enough that
/// rounding them to f16 moves the step by far more than the tolerance, the kernel
/// matches the CPU on the weights as given and not on their f16 rounding (which is
/// what `lstm_step_f16` must match instead).
/// `shapes` (I, H, B) with 4 ∤ H run the f32 storage of the plain forms
/// (`weights_f32.wgsl`); with 4 | H the `Quads` tiling reads `weights_f32x4.wgsl`.
pub fn weights_f32_cases(ctx: &GpuContext, shapes: &[(usize, usize, usize)]) {
    for (n, &(i, h, b)) in shapes.iter().enumerate() {
        let seed = 300 + 10 * n as u64;
        let mut w = LstmWeights::init(&LstmConfig::new(i, h), seed).unwrap();
        w.layers[0].w_hh = random((4 * h, h), seed + 4) * 4.0;
        let lw = &w.layers[0];
        let gx = random((b, 4 * h), seed + 1);
        let (h0, c0) = (random((b, h), seed + 2), random((b, h), seed + 3));
        let active = vec![true; b];
        let (want_h, want_c) =
            cpu::lstm_step(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
        let (f16_h, _) =
            cpu::lstm_step(gx.view(), h0.view(), c0.view(), &rounded(lw), &active).unwrap();
        for tiling in StepTiling::ALL {
            let state = (h0.view(), c0.view());
            let got =
                kernels::lstm_step::run(ctx, gx.view(), state, lw, &active, tiling, true).unwrap();
            let tag = format!("weights I={i} H={h} B={b} {tiling:?}");
            assert_close(&format!("h {tag}"), &got.h, &want_h, GPU_ATOL, GPU_RTOL);
            assert_close(&format!("c {tag}"), &got.c, &want_c, GPU_ATOL, GPU_RTOL);
            let off = max_diff(&got.h, &f16_h);
            assert!(
                off > 10.0 * GPU_ATOL,
                "{tag}: as near f16 weights as f32 ({off:e})"
            );
        }
    }
}

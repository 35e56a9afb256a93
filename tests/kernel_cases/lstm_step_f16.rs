//! `lstm_step` reading f16 weights (`weights_f16.wgsl`) in every tiling and peephole
//! mode against `cpu::lstm_step` on the same weights rounded to f16 (see tests/kernels.rs).

use crate::common::*;
use half::f16;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::weights::{LayerWeights, PeepholeWeights};
use lstm_wgpu::{GpuContext, LstmConfig, LstmWeights, Peephole, StepTiling};
use ndarray::Array2;

/// `w` with its recurrent weights (`W_hh`, and `W_ch` for Full peepholes) rounded to f16.
pub fn rounded(w: &LayerWeights) -> LayerWeights {
    let round = |m: &Array2<f32>| m.mapv(|v| f16::from_f32(v).to_f32());
    LayerWeights {
        w_hh: round(&w.w_hh),
        peephole: match &w.peephole {
            PeepholeWeights::Full(m) => PeepholeWeights::Full(round(m)),
            other => other.clone(),
        },
        ..w.clone()
    }
}

pub fn lstm_step_f16_cases(ctx: &GpuContext) {
    let tilings = StepTiling::ALL;
    for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
        for (n, &(i, h, b)) in [(1, 1, 1), (3, 7, 5), (9, 33, 17), (6, 33, 40)]
            .iter()
            .enumerate()
        {
            let seed = 500 + 10 * n as u64;
            let w = LstmWeights::init(&LstmConfig::new(i, h).peephole(peephole), seed).unwrap();
            let lw = &w.layers[0];
            let gx = random((b, 4 * h), seed + 1);
            let (h0, c0) = (random((b, h), seed + 2), random((b, h), seed + 3) * 2.0);
            let active = active_rows(b);
            let twin = rounded(lw);
            let (want_h, want_c, want_gates) =
                cpu::lstm_step_with_gates(gx.view(), h0.view(), c0.view(), &twin, &active).unwrap();
            for tiling in tilings {
                let state = (h0.view(), c0.view());
                let got =
                    kernels::lstm_step_f16::run(ctx, gx.view(), state, lw, &active, tiling, true)
                        .unwrap();
                let tag = format!("f16 {peephole:?} I={i} H={h} B={b} {tiling:?}");
                for (name, got, want) in [
                    ("h", &got.h, &want_h),
                    ("c", &got.c, &want_c),
                    ("gates", &got.gates, &want_gates),
                ] {
                    assert_close(&format!("{name} {tag}"), got, want, GPU_ATOL, GPU_RTOL);
                }
            }
        }
    }
}

//! `gru_step.wgsl` alone in every tiling against `cpu::gru_step` (see tests/kernels.rs).

use crate::common::*;
use lstm_wgpu::cpu::{self, gru_step::input_bias, gru_step::recurrent_n_bias};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::{GpuContext, GruConfig, GruWeights, StepTiling};
use ndarray::{s, Array2};

/// (I, H, B) shapes: 1×1×1, H off every tile, a batch past two 16-row tiles.
const SHAPES: [(usize, usize, usize); 4] = [(1, 1, 1), (3, 7, 5), (9, 33, 17), (6, 33, 40)];

pub fn gru_step_cases(ctx: &GpuContext) {
    let tilings = [
        StepTiling::Gemv,
        StepTiling::Tiled,
        StepTiling::Units,
        StepTiling::Rows,
    ];
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let seed = 900 + 10 * n as u64;
        let w = GruWeights::init(&GruConfig::new(i, h), seed).unwrap();
        let lw = &w.layers[0];
        // A projection with its bias folded as the schedule folds it.
        let gx = random((b, 3 * h), seed + 1) + &input_bias(lw, true);
        let h0 = random((b, h), seed + 2);
        let active = active_rows(b);
        let (h_all, gates_all) = cpu::gru_step(
            gx.view(),
            h0.view(),
            lw.w_hh.view(),
            recurrent_n_bias(lw, true).view(),
            true,
        );
        // Past its length a row keeps its state, outputs 0 and caches zero gates.
        let pick = |a: &Array2<f32>, other: &Array2<f32>| {
            let mut out = other.clone();
            for (r, _) in active.iter().enumerate().filter(|(_, &on)| on) {
                out.row_mut(r).assign(&a.row(r));
            }
            out
        };
        let want_h = pick(&h_all, &h0);
        let want_y = pick(&h_all, &Array2::zeros((b, h)));
        let want_gates = pick(&gates_all, &Array2::zeros((b, 4 * h)));
        for tiling in tilings {
            let got = kernels::gru_step::run(ctx, gx.view(), h0.view(), lw, &active, tiling, true)
                .unwrap();
            let tag = format!("I={i} H={h} B={b} {tiling:?}");
            let zeros = Array2::zeros((b, h));
            for (name, got, want) in [
                ("h", &got.h, &want_h),
                ("y", &got.y, &want_y),
                ("gates", &got.gates, &want_gates),
                ("h_prev", &got.h_prev, &h0),
                ("c", &got.c, &zeros),
                ("c_prev", &got.c_prev, &zeros),
            ] {
                assert_close(
                    &format!("gru_step {name} {tag}"),
                    got,
                    want,
                    GPU_ATOL,
                    GPU_RTOL,
                );
            }
        }
        // The fourth gate block is a = W_hn h + b_hn: not all zeros (a dead slot would be).
        assert!(want_gates.slice(s![.., 3 * h..]).iter().any(|&v| v != 0.0));
    }
}

//! `gru_step.wgsl` alone in every tiling against `cpu::gru_step` (see tests/kernels.rs).

use crate::common::*;
use lstm_wgpu::cpu::{self, gru_step::input_bias, gru_step::recurrent_n_bias};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::{GpuContext, GruConfig, GruWeights, StepTiling};
use ndarray::{s, Array2};

/// (I, H, B) shapes: 1×1×1, H off every tile, a batch past two 16-row tiles.
pub const SHAPES: [(usize, usize, usize); 4] = [(1, 1, 1), (3, 7, 5), (9, 33, 17), (6, 33, 40)];

pub fn gru_step_cases(ctx: &GpuContext) {
    let tilings = StepTiling::ALL;
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

/// `gru_step_backward.wgsl` alone in the form `ctx` selects, against
/// `cpu::gru_step_backward` on the gates of a real forward step, with and without `dy`.
pub fn gru_step_backward_cases(ctx: &GpuContext, form: &str, shapes: &[(usize, usize, usize)]) {
    for (n, &(i, h, b)) in shapes.iter().enumerate() {
        let seed = 950 + 10 * n as u64;
        let w = GruWeights::init(&GruConfig::new(i, h), seed).unwrap();
        let lw = &w.layers[0];
        let gx = random((b, 3 * h), seed + 1) + &input_bias(lw, true);
        let h_prev = random((b, h), seed + 2);
        let b_hn = recurrent_n_bias(lw, true);
        let (_, gates) = cpu::gru_step(gx.view(), h_prev.view(), lw.w_hh.view(), b_hn.view(), true);
        let (dh, dy) = (random((b, h), seed + 3), random((b, h), seed + 4));
        let active = active_rows(b);
        for with_dy in [false, true] {
            let total = if with_dy { &dh + &dy } else { dh.clone() };
            let twin = cpu::gru_step_backward(
                total.view(),
                gates.view(),
                h_prev.view(),
                lw.w_hh.view(),
                true,
            );
            // The kernel's dz slots: (∂r, ∂z, ∂a, ∂n); rows past their length pass dh on.
            let mut want_dz = Array2::zeros((b, 4 * h));
            let mut want_dh = dh.clone();
            for (r, _) in active.iter().enumerate().filter(|(_, &on)| on) {
                let mut row = want_dz.row_mut(r);
                row.slice_mut(s![..2 * h])
                    .assign(&twin.dgx.slice(s![r, ..2 * h]));
                row.slice_mut(s![2 * h..3 * h])
                    .assign(&twin.dgh.slice(s![r, 2 * h..]));
                row.slice_mut(s![3 * h..])
                    .assign(&twin.dgx.slice(s![r, 2 * h..]));
                want_dh.row_mut(r).assign(&twin.dh_prev.row(r));
            }
            let input = kernels::gru_step_backward::GruStepGradsIn {
                dh: dh.view(),
                dy: with_dy.then(|| dy.view()),
                gates: gates.view(),
                h_prev: h_prev.view(),
            };
            let (dz, dh_prev) =
                kernels::gru_step_backward::run(ctx, lw, &input, &active, true).unwrap();
            let tag = format!("gru_step_backward {form} I={i} H={h} B={b} dy={with_dy}");
            assert_close(&format!("{tag} dz"), &dz, &want_dz, GRAD_ATOL, GRAD_RTOL);
            assert_close(
                &format!("{tag} dh_prev"),
                &dh_prev,
                &want_dh,
                GRAD_ATOL,
                GRAD_RTOL,
            );
        }
    }
}

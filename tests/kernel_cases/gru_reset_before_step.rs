//! `gru_reset_before_step.wgsl` and its backward alone (both dispatches of a step)
//! against `cpu::gru_step` / `cpu::gru_step_backward` with `reset_after = false` (the
//! tests of the same names in tests/kernels.rs run these cases).

use crate::common::*;
use lstm_wgpu::cpu::{self, gru_step::input_bias, gru_step::n_operand};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::gru_step_backward::GruStepGradsIn;
use lstm_wgpu::{GpuContext, GruConfig, GruLayerWeights, GruWeights, StepTiling};
use ndarray::{s, Array1, Array2};

/// (I, H, B): 1×1×1, H off every tile (17, 33) and past `step_reset_n`'s 64 units (65,
/// 70), a batch past two 16-row tiles.
pub const SHAPES: [(usize, usize, usize); 5] =
    [(1, 1, 1), (3, 17, 1), (9, 33, 17), (5, 65, 3), (6, 70, 40)];

/// A layer, a projection with every bias folded (as the twin takes it; the schedule
/// keeps b_hn apart, in the kernel's third slot), and h_{t-1}.
fn operands(
    i: usize,
    h: usize,
    b: usize,
    seed: u64,
) -> (GruLayerWeights, Array2<f32>, Array2<f32>) {
    let w = GruWeights::init(&GruConfig::new(i, h).reset_after(false), seed).unwrap();
    let lw = w.layers[0].clone();
    let gx = random((b, 3 * h), seed + 1) + &input_bias(&lw, false);
    (lw, gx, random((b, h), seed + 2))
}

/// `a`'s rows where `active`, `other`'s elsewhere.
fn pick(active: &[bool], a: &Array2<f32>, other: &Array2<f32>) -> Array2<f32> {
    let mut out = other.clone();
    for (r, _) in active.iter().enumerate().filter(|(_, &on)| on) {
        out.row_mut(r).assign(&a.row(r));
    }
    out
}

pub fn gru_reset_before_step_cases(ctx: &GpuContext) {
    let tilings = StepTiling::ALL;
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let (lw, gx, h0) = operands(i, h, b, 1200 + 10 * n as u64);
        let active = active_rows(b);
        let zero_bhn = Array1::zeros(h);
        let (h_all, gates_all) =
            cpu::gru_step(gx.view(), h0.view(), lw.w_hh.view(), zero_bhn.view(), false);
        let want_h = pick(&active, &h_all, &h0);
        let want_y = pick(&active, &h_all, &Array2::zeros((b, h)));
        let want_gates = pick(&active, &gates_all, &Array2::zeros((b, 4 * h)));
        // dW_hn's operand r ⊙ h_{t-1}, cached on every row (∂n_pre is 0 past a length).
        let want_rh = n_operand(gates_all.view(), h0.view(), false);
        for tiling in tilings {
            let got = kernels::gru_reset_before_step::run(
                ctx,
                gx.view(),
                h0.view(),
                &lw,
                &active,
                tiling,
                true,
            )
            .unwrap();
            let tag = format!("gru_reset_before_step I={i} H={h} B={b} {tiling:?}");
            for (name, got, want) in [
                ("h", &got.h, &want_h),
                ("y", &got.y, &want_y),
                ("gates", &got.gates, &want_gates),
                ("h_prev", &got.h_prev, &h0),
                ("r⊙h", &got.c_prev, &want_rh),
                ("c", &got.c, &Array2::zeros((b, h))),
            ] {
                assert_close(&format!("{tag} {name}"), got, want, GPU_ATOL, GPU_RTOL);
            }
        }
    }
}

pub fn gru_reset_before_step_backward_cases(
    ctx: &GpuContext,
    form: &str,
    shapes: &[(usize, usize, usize)],
) {
    for (n, &(i, h, b)) in shapes.iter().enumerate() {
        let (lw, gx, h_prev) = operands(i, h, b, 1300 + 10 * n as u64);
        let zero_bhn = Array1::zeros(h);
        let (_, gates) = cpu::gru_step(
            gx.view(),
            h_prev.view(),
            lw.w_hh.view(),
            zero_bhn.view(),
            false,
        );
        let (dh, dy) = (
            random((b, h), 1305 + n as u64),
            random((b, h), 1306 + n as u64),
        );
        let active = active_rows(b);
        for with_dy in [false, true] {
            let total = if with_dy { &dh + &dy } else { dh.clone() };
            let twin = cpu::gru_step_backward(
                total.view(),
                gates.view(),
                h_prev.view(),
                lw.w_hh.view(),
                false,
            );
            // The kernel's dz slots: (∂r, ∂z, 0, ∂n); rows past their length pass dh on.
            let mut want_dz = Array2::zeros((b, 4 * h));
            want_dz
                .slice_mut(s![.., ..2 * h])
                .assign(&twin.dgx.slice(s![.., ..2 * h]));
            want_dz
                .slice_mut(s![.., 3 * h..])
                .assign(&twin.dgx.slice(s![.., 2 * h..]));
            let want_dz = pick(&active, &want_dz, &Array2::zeros((b, 4 * h)));
            let want_dh = pick(&active, &twin.dh_prev, &dh);
            let input = GruStepGradsIn {
                dh: dh.view(),
                dy: with_dy.then(|| dy.view()),
                gates: gates.view(),
                h_prev: h_prev.view(),
            };
            let (dz, dh_prev) =
                kernels::gru_reset_before_step_backward::run(ctx, &lw, &input, &active, true)
                    .unwrap();
            let tag =
                format!("gru_reset_before_step_backward {form} I={i} H={h} B={b} dy={with_dy}");
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

//! `recurrent_step.wgsl` and `recurrent_step_backward.wgsl`, the recurrent products every
//! cell's step shares, read directly: `gru_step` keeps `a = W_hn h + b_hn` (one slot of
//! the product) in its cache, and the backward's FINAL dispatch returns
//! `carry + Σ_q dz[q]·w_rec[q]` for the `dz` the step wrote. Both are compared with the
//! same products computed on the CPU, in every form, on shapes past every tile.

use crate::common::*;
use lstm_wgpu::cpu::{self, gru_step::input_bias, gru_step::recurrent_n_bias};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::{GpuContext, GruConfig, GruWeights, StepTiling};
use ndarray::{s, Array2};

/// (I, H, B): 1×1×1, K = H past the 16-wide slice and the 32-unit block, B past 16 rows.
const SHAPES: [(usize, usize, usize); 4] = [(1, 1, 1), (3, 17, 5), (2, 65, 3), (4, 33, 40)];

/// `v` on the rows of `active`, 0 elsewhere.
fn live_rows(v: &Array2<f32>, active: &[bool]) -> Array2<f32> {
    let mut out = Array2::zeros(v.raw_dim());
    for (r, _) in active.iter().enumerate().filter(|(_, &on)| on) {
        out.row_mut(r).assign(&v.row(r));
    }
    out
}

pub fn recurrent_step_cases(ctx: &GpuContext) {
    let tilings = StepTiling::ALL;
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let w = GruWeights::init(&GruConfig::new(i, h), 800 + n as u64).unwrap();
        let lw = &w.layers[0];
        let gx = random((b, 3 * h), 810 + n as u64) + &input_bias(lw, true);
        let h0 = random((b, h), 820 + n as u64);
        let active = active_rows(b);
        let want = live_rows(&h0.dot(&lw.w_hh.slice(s![2 * h.., ..]).t()), &active);
        let b_hn = recurrent_n_bias(lw, true);
        for tiling in tilings {
            let got = kernels::gru_step::run(ctx, gx.view(), h0.view(), lw, &active, tiling, true)
                .unwrap();
            let a = live_rows(&(&got.gates.slice(s![.., 3 * h..]) - &b_hn), &active);
            assert_close(
                &format!("recurrent_step I={i} H={h} B={b} {tiling:?}"),
                &a,
                &want,
                GPU_ATOL,
                GPU_RTOL,
            );
        }
    }
}

pub fn recurrent_step_backward_cases(ctx: &GpuContext, form: &str) {
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let w = GruWeights::init(&GruConfig::new(i, h), 900 + n as u64).unwrap();
        let lw = &w.layers[0];
        let gx = random((b, 3 * h), 910 + n as u64) + &input_bias(lw, true);
        let h_prev = random((b, h), 920 + n as u64);
        let b_hn = recurrent_n_bias(lw, true);
        let (_, gates) = cpu::gru_step(gx.view(), h_prev.view(), lw.w_hh.view(), b_hn.view(), true);
        let dh = random((b, h), 930 + n as u64);
        let active = active_rows(b);
        let input = kernels::gru_step_backward::GruStepGradsIn {
            dh: dh.view(),
            dy: None,
            gates: gates.view(),
            h_prev: h_prev.view(),
        };
        let (dz, dh_prev) =
            kernels::gru_step_backward::run(ctx, lw, &input, &active, true).unwrap();
        // The carry the step leaves (dh·z live, dh idle), plus the product over the slots
        // w_rec holds (r, z, a; the fourth is zero) with the dz the step wrote.
        let z = gates.slice(s![.., h..2 * h]);
        let mut want = &dh * &z;
        for (r, &on) in active.iter().enumerate() {
            if !on {
                want.row_mut(r).assign(&dh.row(r));
            }
        }
        want += &dz.slice(s![.., ..3 * h]).dot(&lw.w_hh);
        let tag = format!("recurrent_step_backward {form} I={i} H={h} B={b}");
        assert_close(&tag, &dh_prev, &want, GRAD_ATOL, GRAD_RTOL);
    }
}

//! The larger cases of `tests/kernels.rs`: one kernel run against its CPU twin, and the
//! input-projection shapes.
#![allow(dead_code)]

mod directions;
mod gru_reset_before_step;
mod gru_step;
mod lanes;
mod lstm_param_grads;
mod lstm_step;
mod lstm_step_backward;
mod lstm_step_f16;
mod matmul_quads;
mod preludes;
mod recurrent_step;
mod step_backward_quads;
mod step_quads;

pub use directions::directions_cases;
pub use gru_reset_before_step::{
    gru_reset_before_step_backward_cases, gru_reset_before_step_cases, SHAPES as GRU_RB_SHAPES,
};
pub use gru_step::{gru_step_backward_cases, gru_step_cases, SHAPES as GRU_SHAPES};
pub use lanes::{lanes_portable_cases, lanes_subgroup_cases};
pub use lstm_param_grads::lstm_param_grads_cases;
pub use lstm_step::{lstm_step_cases, weights_f32_cases};
pub use lstm_step_backward::lstm_step_backward_cases;
pub use lstm_step_f16::lstm_step_f16_cases;
pub use matmul_quads::matmul_quads_cases;
pub use preludes::{matmul_operands_f32_cases, matmul_operands_f32x4_cases, state_cases};
pub use recurrent_step::{recurrent_step_backward_cases, recurrent_step_cases};
pub use step_backward_quads::{step_backward_quads_bits, step_backward_quads_cases};
pub use step_quads::step_quads_cases;

use crate::common::*;
use lstm_wgpu::cpu::{self, UpdateRule};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::matmul::MatmulParams;
use lstm_wgpu::GpuContext;
use ndarray::{Array2, ArrayView1};

/// `[rows, cols]` stored at `off` with leading dimension `ld` in `data`.
fn stored(data: &[f32], off: u32, (rows, cols): (usize, usize), ld: u32) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, q)| {
        data[off as usize + r * ld as usize + q]
    })
}

/// One `matmul::run` vs `cpu::matmul` on random buffers: the `[M, N]` block of `c`
/// (NaN unless ACCUMULATE reads it) must match, and nothing outside it may change.
pub fn matmul_case(ctx: &GpuContext, form: &str, p: MatmulParams, seed: u64) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let flag = |f: u32| p.flags & f != 0;
    let a_dims = if flag(MatmulParams::A_TRANS) {
        (k, m)
    } else {
        (m, k)
    };
    let b_dims = if flag(MatmulParams::B_TRANS) {
        (n, k)
    } else {
        (k, n)
    };
    let len = |off: u32, rows: usize, ld: u32| off as usize + rows * ld as usize;
    let a = random(len(p.a_off, a_dims.0, p.lda), seed).to_vec();
    let b = random(len(p.b_off, b_dims.0, p.ldb), seed + 1).to_vec();
    let bias = flag(MatmulParams::BIAS).then(|| random(n, seed + 2).to_vec());
    let mut c = random(len(p.c_off, m, p.ldc), seed + 3).to_vec();
    let op = |s: Array2<f32>, trans: bool| if trans { s.reversed_axes() } else { s };
    let op_a = op(
        stored(&a, p.a_off, a_dims, p.lda),
        flag(MatmulParams::A_TRANS),
    );
    let op_b = op(
        stored(&b, p.b_off, b_dims, p.ldb),
        flag(MatmulParams::B_TRANS),
    );
    let mut want = cpu::matmul(
        op_a.view(),
        op_b.view(),
        bias.as_deref().map(ArrayView1::from),
    )
    .unwrap();
    let block = |r: usize, q: usize| p.c_off as usize + r * p.ldc as usize + q;
    if flag(MatmulParams::ACCUMULATE) {
        want += &stored(&c, p.c_off, (m, n), p.ldc);
    } else {
        (0..m * n).for_each(|i| c[block(i / n, i % n)] = f32::NAN);
    }
    let got = kernels::matmul::run(ctx, p, &a, &b, bias.as_deref(), &c).unwrap();
    let tag = format!("matmul {form} {p:?}");
    let got_block = stored(&got, p.c_off, (m, n), p.ldc);
    assert_close(&tag, &got_block, &want, GPU_ATOL, GPU_RTOL);
    let inside: std::collections::HashSet<usize> =
        (0..m * n).map(|i| block(i / n, i % n)).collect();
    for (i, (g, before)) in got.iter().zip(&c).enumerate() {
        let kept = inside.contains(&i) || g.to_bits() == before.to_bits();
        assert!(
            kept,
            "{tag}: c[{i}] outside the block changed: {before} → {g}"
        );
    }
}

/// The input projection `x·wᵀ + bias` through `gpu::input_proj` (moved here from
/// tests/gpu_forward.rs): 1 row, 1 column; sizes around the 64×64 tile, the 16-wide K
/// slice and the 8 columns × 64 rows of `main_rows`.
pub fn input_proj_cases(ctx: &GpuContext, form: &str) {
    let shapes = [
        (1, 1, 1),
        (1, 4, 3),
        (63, 65, 17),
        (130, 36, 64),
        (7, 200, 5),
    ];
    for (i, &(m, n, k)) in shapes.iter().enumerate() {
        let x = random((m, k), 10 + i as u64);
        let w = random((n, k), 20 + i as u64);
        let bias = random(n, 30 + i as u64);
        let got = lstm_wgpu::gpu::input_proj(ctx, x.view(), w.view(), bias.view()).unwrap();
        let want = cpu::matmul(x.view(), w.t(), Some(bias.view())).unwrap();
        let tag = format!("input_proj {form} M={m} N={n} K={k}");
        assert_close(&tag, &got, &want, GPU_ATOL, GPU_RTOL);
    }
}

/// One `optimizer_update::run` vs `cpu::optimizer_update` on random tensors and moments
/// (`v` ≥ 0; SGD's first step never reads `m`, so there it starts as NaN).
pub fn optimizer_case(ctx: &GpuContext, lens: &[usize], rule: &UpdateRule, seed: u64, tag: &str) {
    let tensors = |s: u64| -> Vec<Vec<f32>> {
        lens.iter()
            .enumerate()
            .map(|(i, &n)| random(n, s + i as u64).to_vec())
            .collect()
    };
    let params = tensors(seed);
    let grads = tensors(seed + 5);
    let m = if !rule.adam && rule.t == 1 {
        lens.iter().map(|&n| vec![f32::NAN; n]).collect()
    } else {
        tensors(seed + 10)
    };
    let v: Vec<Vec<f32>> = tensors(seed + 15)
        .into_iter()
        .map(|t| t.into_iter().map(f32::abs).collect())
        .collect();
    let grads: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
    let run = |gpu: bool| {
        let (mut p, mut m, mut v) = (params.clone(), m.clone(), v.clone());
        let mut refs: Vec<&mut [f32]> = p.iter_mut().map(Vec::as_mut_slice).collect();
        if gpu {
            kernels::optimizer_update::run(ctx, &mut refs, &grads, &mut m, &mut v, rule, true)
                .unwrap();
        } else {
            cpu::optimizer_update(&mut refs, &grads, &mut m, &mut v, rule).unwrap();
        }
        [p, m, v]
    };
    let (got, want) = (run(true), run(false));
    for (name, got, want) in [
        ("param", &got[0], &want[0]),
        ("m", &got[1], &want[1]),
        ("v", &got[2], &want[2]),
    ] {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let what = format!("{name}[{i}] {tag}");
            assert_close_slice(&what, g, w, GPU_ATOL, GPU_RTOL);
        }
    }
}

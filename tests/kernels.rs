//! Each forward kernel alone (`gpu::kernels::<stem>::run`: one dispatch from host data)
//! vs its CPU twin `cpu::<stem>`, one test named for each stem, on awkward shapes (B = 1,
//! H = 1 and H off every workgroup tile, I ≠ H, batches past a tile). Every output the
//! kernel writes starts as NaN, so an element it misses fails the comparison. The
//! training kernels' tests are in `tests/kernels_training.rs`.

mod common;

use common::*;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::matmul::MatmulParams;
use lstm_wgpu::{cpu, GpuContext, LstmConfig, LstmWeights, Peephole, StepTiling};
use ndarray::{Array2, ArrayView1};

/// `matmul.wgsl` in both forms (tiled `main`, software `main_rows`): every combination
/// of A_TRANS, B_TRANS, ACCUMULATE and BIAS, packed and with offsets and padded leading
/// dimensions; then the input projection cases (`gpu::input_proj`).
#[test]
fn matmul() {
    // (M, N, K, padded): 1×1×1; past the 64×64 tile in M, in N; K past the 16-wide slice.
    let shapes = [(1, 1, 1, true), (65, 7, 33, false), (17, 70, 18, true)];
    for_each_form(|ctx, form| {
        for flags in 0..16u32 {
            for (n, &(m, cols, k, padded)) in shapes.iter().enumerate() {
                let mut p = MatmulParams::new(m, cols, k);
                let set = |f: u32| flags & f != 0;
                if set(MatmulParams::A_TRANS) {
                    p = p.a_trans();
                }
                if set(MatmulParams::B_TRANS) {
                    p = p.b_trans();
                }
                if set(MatmulParams::ACCUMULATE) {
                    p = p.accumulate();
                }
                if set(MatmulParams::BIAS) {
                    p = p.bias();
                }
                if padded {
                    let (lda, ldb, ldc) = (p.lda as usize, p.ldb as usize, p.ldc as usize);
                    p = p.lda(lda + 3).ldb(ldb + 1).ldc(ldc + 2).offsets(5, 2, 7);
                }
                matmul_case(ctx, form, p, 1000 + 10 * (flags as u64 * 3 + n as u64));
            }
        }
        input_proj_cases(ctx, form);
    });
}

/// `[rows, cols]` stored at `off` with leading dimension `ld` in `data`.
fn stored(data: &[f32], off: u32, (rows, cols): (usize, usize), ld: u32) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, q)| {
        data[off as usize + r * ld as usize + q]
    })
}

/// One `matmul::run` vs `cpu::matmul` on random buffers: the `[M, N]` block of `c`
/// (NaN unless ACCUMULATE reads it) must match, and nothing outside it may change.
fn matmul_case(ctx: &GpuContext, form: &str, p: MatmulParams, seed: u64) {
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
fn input_proj_cases(ctx: &GpuContext, form: &str) {
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

/// `lstm_step.wgsl` in every tiling and peephole mode, some rows past their length: the
/// new state, the output and the training cache (gates, previous state) of one step.
#[test]
fn lstm_step() {
    let Some(ctx) = shared_context() else { return };
    let tilings = [
        StepTiling::Gemv,
        StepTiling::Tiled,
        StepTiling::Units,
        StepTiling::Rows,
    ];
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
            let want_y =
                Array2::from_shape_fn(
                    (b, h),
                    |(r, j)| {
                        if active[r] {
                            want_h[[r, j]]
                        } else {
                            0.0
                        }
                    },
                );
            for tiling in tilings {
                let state = (h0.view(), c0.view());
                let got =
                    kernels::lstm_step::run(&ctx, gx.view(), state, lw, &active, tiling, true)
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

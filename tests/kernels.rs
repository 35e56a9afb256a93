//! Each kernel alone (`gpu::kernels::<stem>::run`: its own dispatch sequence from host
//! data) vs its CPU twin `cpu::<stem>`, one test named for each stem of `shaders/`, on
//! awkward shapes (B = 1, H = 1 and H off every workgroup tile, I ≠ H, batches and rows
//! past a tile). Every output a kernel writes starts as NaN, so an element it misses
//! fails the comparison. (`probe_empty.wgsl` is the benchmark's empty dispatch; its
//! probe checks its own result in tests/probes.rs.)

mod common;
mod kernel_cases;

use common::*;
use kernel_cases::*;
use lstm_wgpu::cpu::{self, UpdateRule};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::lstm_step_backward::StepGrads;
use lstm_wgpu::gpu::kernels::matmul::MatmulParams;
use lstm_wgpu::{LstmConfig, LstmWeights, StepTiling};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `matmul.wgsl` in both forms (tiled `main`, software `main_rows`): every combination
/// of A_TRANS, B_TRANS, ACCUMULATE and BIAS, packed and with offsets and padded leading
/// dimensions; then the input projection cases (`gpu::input_proj`).
#[test]
fn matmul() {
    // (M, N, K, padded): 1×1×1; past the 64×64 tile in M, in N; K past the 16-wide slice.
    // In the software form, M < 64 takes main_rows' lanes-over-columns layout, M = 65 the rows one.
    // K = 1100 and 600: the tiled form splits them over K (4 and 2 slices, the last short).
    let shapes = [(1, 1, 1, true), (65, 7, 33, false), (17, 70, 18, true)]
        .into_iter()
        .chain([(70, 5, 1100, true), (9, 66, 600, false)]);
    for_each_form(|ctx, form| {
        for flags in 0..16u32 {
            for (n, (m, cols, k, padded)) in shapes.clone().enumerate() {
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

/// `matmul_quads.wgsl`'s three forms (software adapters; x·Wᵀ, aᵀ·b, a·b when the loads
/// align), on each kernel form of the context: against the CPU, and bit for bit against
/// `main_rows` (kernel_cases/matmul_quads.rs).
#[test]
fn matmul_quads() {
    for_each_form(|ctx, _| matmul_quads_cases(ctx));
}

/// `lstm_step.wgsl` in every tiling and peephole mode, some rows past their length: the
/// new state, the output and the training cache (cases in tests/kernel_cases/lstm_step.rs).
#[test]
fn lstm_step() {
    let Some(ctx) = shared_context() else { return };
    lstm_step_cases(&ctx);
}

/// `step_quads.wgsl`, the software adapters' step form for 4 | H, bit for bit the
/// sums of `step_rows` for every cell (cases in tests/kernel_cases/step_quads.rs).
#[test]
fn step_quads() {
    let Some(ctx) = shared_context() else { return };
    step_quads_cases(&ctx);
}

/// `weights_f32.wgsl`, the step's default weight storage: every bit of f32 weights
/// reaches the product (against the CPU on the same weights, and measurably away from
/// the same weights rounded to f16).
#[test]
fn weights_f32() {
    let Some(ctx) = shared_context() else { return };
    weights_f32_cases(&ctx, &[(3, 7, 5), (9, 33, 17)]);
}

/// `weights_f32x4.wgsl`, `step_quads`' vec4 weight storage (4 | H): the same check.
#[test]
fn weights_f32x4() {
    let Some(ctx) = shared_context() else { return };
    weights_f32_cases(&ctx, &[(3, 36, 5), (9, 68, 17)]);
}

/// `state_f32.wgsl` and `state_f32x4.wgsl`, the step's state storage, over whole
/// sequences (cases in tests/kernel_cases/preludes.rs).
#[test]
fn state_f32() {
    state_cases(false);
}

#[test]
fn state_f32x4() {
    state_cases(true);
}

/// `matmul_operands_f32.wgsl` and `matmul_operands_f32x4.wgsl`, the GEMM's operand
/// storage, from every start within a vec4 (cases in tests/kernel_cases/preludes.rs).
#[test]
fn matmul_operands_f32() {
    matmul_operands_f32_cases();
}

#[test]
fn matmul_operands_f32x4() {
    matmul_operands_f32x4_cases();
}

/// Both dispatches of a reset-before GRU step in every tiling of the first, some rows
/// past their length (cases in tests/kernel_cases/gru_reset_before_step.rs).
#[test]
fn gru_reset_before_step() {
    let Some(ctx) = shared_context() else { return };
    gru_reset_before_step_cases(&ctx);
}

/// Both dispatches of a reset-before GRU backward step, in both forms, with and
/// without `dy` (cases in tests/kernel_cases/gru_reset_before_step.rs).
#[test]
fn gru_reset_before_step_backward() {
    for_each_form(|ctx, form| gru_reset_before_step_backward_cases(ctx, form, &GRU_RB_SHAPES));
}

/// `lstm_step` reading f16 weights (`weights_f16.wgsl`) vs the CPU step on the weights
/// rounded to f16 (cases in tests/kernel_cases/lstm_step_f16.rs).
#[test]
fn lstm_step_f16() {
    let Some(ctx) = shared_context() else { return };
    lstm_step_f16_cases(&ctx);
}

/// `lanes_portable.wgsl`: the split-K step's lane sums through workgroup memory (the
/// form without subgroups) in every cell, against the CPU (cases in
/// tests/kernel_cases/lanes.rs).
#[test]
fn lanes_portable() {
    lanes_portable_cases();
}

/// `lanes_subgroup.wgsl`: the same sums by subgroup shuffles, against the CPU and with the
/// portable form's bits in every cell (tests/kernel_cases/lanes.rs).
#[test]
fn lanes_subgroup() {
    lanes_subgroup_cases();
}

/// `directions.wgsl`: direction 1's blocks of the stacked peepholes and cache, forward
/// and backward, in both forms and every peephole mode (tests/kernel_cases/directions.rs).
#[test]
fn directions() {
    directions_cases();
}

/// The shared recurrent products alone, forward in every tiling and backward in both
/// forms (cases in tests/kernel_cases/recurrent_step.rs).
#[test]
fn recurrent_step() {
    let Some(ctx) = shared_context() else { return };
    recurrent_step_cases(&ctx);
}
#[test]
fn recurrent_step_backward() {
    for_each_form(recurrent_step_backward_cases);
}

/// `gru_step.wgsl` in every tiling, some rows past their length: the new state, the
/// output and the training cache (cases in tests/kernel_cases/gru_step.rs).
#[test]
fn gru_step() {
    let Some(ctx) = shared_context() else { return };
    gru_step_cases(&ctx);
}

/// `gru_step_backward.wgsl` in both forms (tiled `main`, software `main_rows`), some rows
/// past their length, with and without `dy` (cases in tests/kernel_cases/gru_step.rs).
#[test]
fn gru_step_backward() {
    for_each_form(|ctx, form| gru_step_backward_cases(ctx, form, &GRU_SHAPES));
}

/// `lstm_step_backward.wgsl` in both forms (tiled `main`, software `main_rows`) and every
/// peephole mode, some rows past their length, with and without `dy`: `dz` and the
/// gradients reaching the previous state (`dz·W_rec` from the FINAL dispatch).
#[test]
fn lstm_step_backward() {
    // (H, B): 1×1; H off the 16- and 32-unit tiles; B past the 16-row tile and two of them.
    let shapes = [(1, 1), (7, 5), (33, 17), (65, 2), (9, 40)];
    for_each_form(|ctx, form| lstm_step_backward_cases(ctx, form, &shapes));
}

/// `step_backward_quads.wgsl`, the software adapters' backward product for 4 | H, in
/// every cell against its CPU twin and bit for bit against `main_rows` (the shapes of
/// `step_quads`; cases in tests/kernel_cases/step_backward_quads.rs).
#[test]
fn step_backward_quads() {
    for_each_form(step_backward_quads_cases);
    let Some(mut ctx) = try_context() else { return };
    step_backward_quads_bits(&mut ctx);
}

/// `lstm_param_grads.wgsl` with peepholes None and Diagonal, in both kernel forms (the
/// tiled one split over long row counts): the bias gradient and the diagonal peephole
/// gradients, sums over all rows (cases in tests/kernel_cases/lstm_param_grads.rs).
#[test]
fn lstm_param_grads() {
    for_each_form(lstm_param_grads_cases);
}

#[test]
fn softmax_xent() {
    let Some(ctx) = shared_context() else { return };
    // (R, C): one row of one class; C off and past the 64-wide workgroup.
    let shapes = [(1, 1), (2, 3), (6, 10), (3, 65), (9, 130)];
    for (n, &(rows, classes)) in shapes.iter().enumerate() {
        let seed = 300 + 10 * n as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut logits = random((rows, classes), seed + 1) * 4.0;
        let mut targets: Vec<u32> = (0..rows)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();
        let weights: Vec<f32> = (0..rows)
            .map(|r| {
                if r % 3 == 1 {
                    0.0
                } else {
                    rng.random_range(0.5..1.5)
                }
            })
            .collect();
        for r in (0..rows).filter(|r| r % 3 == 2 && classes > 2) {
            // Two equal maxima at classes 1 and classes - 1; the target alternates.
            let top = logits.row(r).iter().copied().fold(f32::MIN, f32::max) + 1.0;
            logits[[r, 1]] = top;
            logits[[r, classes - 1]] = top;
            targets[r] = if r % 2 == 0 { 1 } else { classes as u32 - 1 };
        }
        logits.row_mut(0).mapv_inplace(|v| v + 100.0);
        let scale = 1.0 / weights.iter().sum::<f32>();
        let want = cpu::softmax_xent(logits.view(), &targets, &weights, scale).unwrap();
        let got = kernels::softmax_xent::run(&ctx, logits.view(), &targets, &weights, scale, true)
            .unwrap();
        let tag = format!("R={rows} C={classes}");
        assert_close(
            &format!("dlogits {tag}"),
            &got.0,
            &want.0,
            GPU_ATOL,
            GPU_RTOL,
        );
        let stats = |s: &[[f32; 2]]| Array2::from_shape_fn((s.len(), 2), |(r, q)| s[r][q]);
        let (got_stats, want_stats) = (stats(&got.1), stats(&want.1));
        assert_close(
            &format!("stats {tag}"),
            &got_stats,
            &want_stats,
            GPU_ATOL,
            GPU_RTOL,
        );
    }
}

/// `optimizer_update.wgsl` (`sum_squares`, then `update`) over four tensors of awkward
/// lengths (one past the 256-wide workgroup), so the clipping norm spans them all: Adam
/// and SGD with momentum, step 1 and a later step, clipping off / active / not
/// triggered, with and without weight decay.
#[test]
fn optimizer_update() {
    let Some(ctx) = shared_context() else { return };
    let lens = [1, 7, 300, 65];
    let mut seed = 400;
    for adam in [true, false] {
        for t in [1, 5] {
            for max_norm in [0.0, 1.0, 100.0] {
                for weight_decay in [0.0, 0.01] {
                    seed += 10;
                    let rule = UpdateRule {
                        adam,
                        lr: 0.05,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay,
                        max_norm,
                        t,
                    };
                    let tag = format!("adam={adam} t={t} max_norm={max_norm} wd={weight_decay}");
                    optimizer_case(&ctx, &lens, &rule, seed, &tag);
                }
            }
        }
    }
}

/// `activations.wgsl` (`sigmoid`, `tanh_stable`, prepended to both step kernels) at
/// magnitudes where the textbook `tanh = (e^2x − 1)/(e^2x + 1)` forms inf/inf: the forward
/// step with pre-activations up to ±1e4 and the backward step with cell states up to
/// ±1e4 match the CPU twins (which use std's `tanh` and `exp`), with no NaN.
#[test]
fn activations() {
    let Some(ctx) = shared_context() else { return };
    let (h, b) = (33, 5);
    let w = LstmWeights::init(&LstmConfig::new(3, h), 11).unwrap();
    let lw = &w.layers[0];
    let active = vec![true; b];
    for (n, scale) in [20.0f32, 90.0, 1e4].into_iter().enumerate() {
        let seed = 500 + 10 * n as u64;
        let gx = random((b, 4 * h), seed) * scale;
        let (h0, c0) = (random((b, h), seed + 1), random((b, h), seed + 2) * scale);
        let (want_h, want_c, want_gates) =
            cpu::lstm_step_with_gates(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
        for tiling in [StepTiling::Gemv, StepTiling::Rows] {
            let got = kernels::lstm_step::run(
                &ctx,
                gx.view(),
                (h0.view(), c0.view()),
                lw,
                &active,
                tiling,
                true,
            )
            .unwrap();
            let tag = format!("scale {scale} {tiling:?}");
            assert_close(&format!("h {tag}"), &got.h, &want_h, GPU_ATOL, GPU_RTOL);
            assert_close(&format!("c {tag}"), &got.c, &want_c, GPU_ATOL, GPU_RTOL);
            assert_close(
                &format!("gates {tag}"),
                &got.gates,
                &want_gates,
                GPU_ATOL,
                GPU_RTOL,
            );
        }
        let (dh, dc) = (random((b, h), seed + 3), random((b, h), seed + 4));
        let gates = random_gates(b, h, seed + 5);
        let want =
            cpu::lstm_step_backward(dh.view(), dc.view(), gates.view(), c0.view(), lw, &active)
                .unwrap();
        let g = StepGrads {
            dh: dh.view(),
            dc: dc.view(),
            dy: None,
            gates: gates.view(),
            c_prev: c0.view(),
        };
        let got = kernels::lstm_step_backward::run(&ctx, lw, &g, &active, true).unwrap();
        assert_close(
            &format!("dz scale {scale}"),
            &got.0,
            &want.0,
            GPU_ATOL,
            GPU_RTOL,
        );
    }
}

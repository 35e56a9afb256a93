//! Each training kernel alone (`gpu::kernels::<stem>::run`: its own dispatch sequence from
//! host data) vs its CPU twin `cpu::<stem>`, one test named for each stem, on awkward
//! shapes (B = 1, H = 1 and H off every workgroup tile, batches and rows past a tile).
//! Every output the kernel writes starts as NaN. The forward kernels' tests are in
//! `tests/kernels.rs`.

mod common;

use common::*;
use lstm_wgpu::cpu::{self, UpdateRule};
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::lstm_step_backward::StepGrads;
use lstm_wgpu::{LstmConfig, LstmWeights, Peephole};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `lstm_step_backward.wgsl` in both forms (tiled `main`, software `main_rows`) and every
/// peephole mode, some rows past their length, with and without `dy`: `dz` and the
/// gradients reaching the previous state (`dz·W_rec` from the FINAL dispatch).
#[test]
fn lstm_step_backward() {
    // (H, B): 1×1; H off the 16- and 32-unit tiles; B past the 16-row tile and two of them.
    let shapes = [(1, 1), (7, 5), (33, 17), (65, 2), (9, 40)];
    for_each_form(|ctx, form| {
        for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            for (n, &(h, b)) in shapes.iter().enumerate() {
                let seed = 100 + 10 * n as u64;
                let cfg = LstmConfig::new(3, h).peephole(peephole);
                let w = LstmWeights::init(&cfg, seed).unwrap();
                let lw = &w.layers[0];
                let (dh, dc, dy) = (
                    random((b, h), seed + 1),
                    random((b, h), seed + 2),
                    random((b, h), seed + 3),
                );
                let (gates, c_prev) =
                    (random_gates(b, h, seed + 4), random((b, h), seed + 5) * 2.0);
                let active = active_rows(b);
                for with_dy in [false, true] {
                    // The kernel adds dy on live rows only; the twin takes the sum.
                    let mut dh_total = dh.clone();
                    for r in (0..b).filter(|&r| with_dy && active[r]) {
                        dh_total.row_mut(r).scaled_add(1.0, &dy.row(r));
                    }
                    let (cv, gv) = (c_prev.view(), gates.view());
                    let want =
                        cpu::lstm_step_backward(dh_total.view(), dc.view(), gv, cv, lw, &active)
                            .unwrap();
                    let g = StepGrads {
                        dh: dh.view(),
                        dc: dc.view(),
                        dy: with_dy.then(|| dy.view()),
                        gates: gv,
                        c_prev: cv,
                    };
                    let got = kernels::lstm_step_backward::run(ctx, lw, &g, &active, true).unwrap();
                    let tag = format!("{form} {peephole:?} H={h} B={b} dy={with_dy}");
                    assert_close(&format!("dz {tag}"), &got.0, &want.0, GPU_ATOL, GPU_RTOL);
                    assert_close(
                        &format!("dh_prev {tag}"),
                        &got.1,
                        &want.1,
                        GPU_ATOL,
                        GPU_RTOL,
                    );
                    assert_close(
                        &format!("dc_prev {tag}"),
                        &got.2,
                        &want.2,
                        GPU_ATOL,
                        GPU_RTOL,
                    );
                }
            }
        }
    });
}

/// `lstm_param_grads.wgsl` with peepholes None and Diagonal: the bias gradient and the
/// diagonal peephole gradients, sums over all rows.
#[test]
fn lstm_param_grads() {
    let Some(ctx) = shared_context() else { return };
    // (R, H): one row of one unit; H off the 64-unit workgroup and past one; many rows.
    let shapes = [(1, 1), (5, 7), (34, 33), (2, 65), (130, 9)];
    for diagonal in [false, true] {
        for (n, &(rows, h)) in shapes.iter().enumerate() {
            let seed = 200 + 10 * n as u64;
            let dz = random((rows, 4 * h), seed);
            let gates = random_gates(rows, h, seed + 1);
            let c_prev = random((rows, h), seed + 2) * 2.0;
            let (dzv, gv, cv) = (dz.view(), gates.view(), c_prev.view());
            let want = cpu::lstm_param_grads(dzv, gv, cv, diagonal).unwrap();
            let got = kernels::lstm_param_grads::run(&ctx, dzv, gv, cv, diagonal, true).unwrap();
            let tag = format!("diagonal={diagonal} R={rows} H={h}");
            assert_close(&format!("db {tag}"), &got.0, &want.0, GPU_ATOL, GPU_RTOL);
            match (&got.1, &want.1) {
                (Some(g), Some(w)) => assert_close(&format!("dp {tag}"), g, w, GPU_ATOL, GPU_RTOL),
                (None, None) => {}
                (g, w) => panic!("dp {tag}: got {g:?}, want {w:?}"),
            }
        }
    }
}

/// `softmax_xent.wgsl`: rows with weight 0, tied maxima (the first wins, as in the twin),
/// a row whose logits would overflow `exp` without the max subtracted, one class.
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

/// One `optimizer_update::run` vs `cpu::optimizer_update` on random tensors and moments
/// (`v` ≥ 0; SGD's first step never reads `m`, so there it starts as NaN).
fn optimizer_case(
    ctx: &lstm_wgpu::GpuContext,
    lens: &[usize],
    rule: &UpdateRule,
    seed: u64,
    tag: &str,
) {
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

//! `lstm_step_backward.wgsl` alone against `cpu::lstm_step_backward` (see tests/kernels.rs).

use crate::common::*;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::lstm_step_backward::StepGrads;
use lstm_wgpu::{GpuContext, LstmConfig, LstmWeights, Peephole};

/// The form `ctx` selects in every peephole mode on `shapes` (H, B), some rows past
/// their length, with and without `dy`: `dz` and the gradients reaching the previous
/// state (`dz·W_rec` from the FINAL dispatch).
pub fn lstm_step_backward_cases(ctx: &GpuContext, form: &str, shapes: &[(usize, usize)]) {
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
            let (gates, c_prev) = (random_gates(b, h, seed + 4), random((b, h), seed + 5) * 2.0);
            let active = active_rows(b);
            for with_dy in [false, true] {
                // The kernel adds dy on live rows only; the twin takes the sum.
                let mut dh_total = dh.clone();
                for r in (0..b).filter(|&r| with_dy && active[r]) {
                    dh_total.row_mut(r).scaled_add(1.0, &dy.row(r));
                }
                let (cv, gv) = (c_prev.view(), gates.view());
                let want = cpu::lstm_step_backward(dh_total.view(), dc.view(), gv, cv, lw, &active)
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
}

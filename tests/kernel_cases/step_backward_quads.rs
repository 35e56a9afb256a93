//! `step_backward_quads.wgsl` alone (see tests/kernels.rs): every cell's backward step
//! on the shapes of `step_quads` (4 | H) against its CPU twin, and bit for bit against
//! the plain `main_rows` form (the context's written-out forms turned off), whose sums
//! it writes out in the same order.

use super::step_quads::SHAPES;
use super::{
    gru_reset_before_step_backward_cases, gru_step_backward_cases, lstm_step_backward_cases,
};
use crate::common::*;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::gru_step_backward::GruStepGradsIn;
use lstm_wgpu::gpu::kernels::lstm_step_backward::StepGrads;
use lstm_wgpu::{GpuContext, GruConfig, GruWeights, LstmConfig, LstmWeights, Peephole};
use ndarray::Array2;

/// The backward steps of every cell in the form `ctx` selects against their CPU twins.
pub fn step_backward_quads_cases(ctx: &GpuContext, form: &str) {
    let lstm: Vec<(usize, usize)> = SHAPES.iter().map(|&(_, h, b)| (h, b)).collect();
    lstm_step_backward_cases(ctx, form, &lstm);
    gru_step_backward_cases(ctx, form, &SHAPES);
    gru_reset_before_step_backward_cases(ctx, form, &SHAPES);
}

/// Runs `f` with the written-out forms on, then off, on a software-form context, and
/// requires the same bits from both (and no NaN: the outputs start poisoned).
fn same_bits_both_ways(
    ctx: &mut GpuContext,
    tag: &str,
    f: impl Fn(&GpuContext) -> Vec<Array2<f32>>,
) {
    ctx.set_software_kernels(true);
    ctx.set_quad_forms(true);
    let quads = f(ctx);
    ctx.set_quad_forms(false);
    let rows = f(ctx);
    ctx.set_quad_forms(true);
    for (n, (q, r)) in quads.iter().zip(&rows).enumerate() {
        assert!(
            q.iter().all(|v| v.is_finite()),
            "{tag} output {n}: not finite"
        );
        let same = q.iter().zip(r).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{tag} output {n}: quads and rows differ (max {})",
            max_diff(q, r)
        );
    }
}

pub fn step_backward_quads_bits(ctx: &mut GpuContext) {
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let seed = 1900 + 10 * n as u64;
        let (dh, dc, dy) = (
            random((b, h), seed),
            random((b, h), seed + 1),
            random((b, h), seed + 2),
        );
        let (gates, c_prev) = (random_gates(b, h, seed + 3), random((b, h), seed + 4));
        let active = active_rows(b);
        for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            let w = LstmWeights::init(&LstmConfig::new(i, h).peephole(peephole), seed).unwrap();
            let g = StepGrads {
                dh: dh.view(),
                dc: dc.view(),
                dy: Some(dy.view()),
                gates: gates.view(),
                c_prev: c_prev.view(),
            };
            let tag = format!("lstm {peephole:?} H={h} B={b}");
            same_bits_both_ways(ctx, &tag, |ctx| {
                let (dz, dh, dc) =
                    kernels::lstm_step_backward::run(ctx, &w.layers[0], &g, &active, true).unwrap();
                vec![dz, dh, dc]
            });
        }
        let gru_gates = random_gates(b, h, seed + 5);
        let g = GruStepGradsIn {
            dh: dh.view(),
            dy: Some(dy.view()),
            gates: gru_gates.view(),
            h_prev: c_prev.view(),
        };
        for reset_after in [true, false] {
            let w = GruWeights::init(&GruConfig::new(i, h).reset_after(reset_after), seed).unwrap();
            let run = match reset_after {
                true => kernels::gru_step_backward::run,
                false => kernels::gru_reset_before_step_backward::run,
            };
            let tag = format!("gru reset_after={reset_after} H={h} B={b}");
            same_bits_both_ways(ctx, &tag, |ctx| {
                let (dz, dh) = run(ctx, &w.layers[0], &g, &active, true).unwrap();
                vec![dz, dh]
            });
        }
    }
}

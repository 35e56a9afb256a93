//! `lstm_step.wgsl`'s first step from a zero state: the index entry that skips the
//! recurrent products (`StepIndex::from_zero`, `k_end` in `recurrent_step.wgsl`).

use ndarray::Array2;

use super::lstm_step::{run_cell, StepTiling};
use super::Cell;
use crate::config::{LstmConfig, Peephole};
use crate::cpu;
use crate::gpu::context::GpuContext;
use crate::weights::LstmWeights;

/// Values in [-1, 1) that vary along both axes.
fn varied((rows, cols): (usize, usize), seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        ((r * 31 + c * 17 + seed * 7) % 23) as f32 / 11.5 - 1.0
    })
}

/// With the zero-state entry every form skips `s · W_rec` whatever the state holds: it
/// gives the CPU step from `h = 0` with the real `c` (which the cell update and the
/// diagonal peepholes read). Here `h` is far from zero, so a form that ran the products
/// anyway would differ. Shapes: B = 1 and B past a tile, H not a multiple of 4 (the
/// plain forms) and a multiple (the written-out one).
#[test]
fn a_step_from_zero_skips_the_recurrent_products() {
    let Ok(ctx) = GpuContext::new() else {
        return; // no adapter: the integration tests say so loudly
    };
    for (n, (b, h, peephole)) in [
        (1, 7, Peephole::None),
        (5, 12, Peephole::Diagonal),
        (19, 8, Peephole::None),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = LstmConfig::new(3, h).peephole(peephole);
        let w = LstmWeights::init(&cfg, 40 + n as u64).unwrap();
        let lw = &w.layers[0];
        let (gx, h0, c0) = (
            varied((b, 4 * h), n),
            varied((b, h), n + 1),
            varied((b, h), n + 2),
        );
        let active = vec![true; b];
        let zero_h = Array2::zeros((b, h));
        let (want_h, want_c, want_gates) =
            cpu::lstm_step_with_gates(gx.view(), zero_h.view(), c0.view(), lw, &active).unwrap();
        for tiling in StepTiling::ALL {
            let state = (h0.view(), c0.view());
            let cell = (Cell::Lstm, tiling);
            let got = run_cell(&ctx, cell, gx.view(), state, lw, &active, (true, true)).unwrap();
            let tag = format!("B={b} H={h} {peephole:?} {tiling:?}");
            for (name, got, want) in [
                ("h", &got.h, &want_h),
                ("c", &got.c, &want_c),
                ("gates", &got.gates, &want_gates),
            ] {
                let err = (got - want).iter().fold(0f32, |m, d| m.max(d.abs()));
                assert!(err < 1e-5, "{name} {tag}: max |Δ| {err}");
            }
        }
    }
}

//! `step_quads.wgsl` alone (see tests/kernels.rs): the quads form on shapes with 4 | H,
//! against the CPU twin and, bit for bit, against `step_rows`, whose sums it writes out
//! in the same order; for the LSTM in every peephole mode, both GRU forms and f16 weights.

use crate::common::*;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels::{self, lstm_step::StepOutput};
use lstm_wgpu::{GpuContext, GruConfig, GruWeights, LstmConfig, LstmWeights, Peephole, StepTiling};
use ndarray::Array2;

/// (I, H, B): one unit quad; H past a 32-unit workgroup (36, 68, partly filled); B = 1,
/// 3 (a 4-row block past the batch), 5 (8 rows), 17 and 40 (16-row blocks, the last
/// partial).
pub const SHAPES: [(usize, usize, usize); 5] =
    [(1, 4, 1), (3, 36, 3), (5, 68, 5), (9, 36, 17), (6, 4, 40)];

fn outputs(o: &StepOutput) -> [(&str, &Array2<f32>); 6] {
    [
        ("h", &o.h),
        ("c", &o.c),
        ("y", &o.y),
        ("gates", &o.gates),
        ("h_prev", &o.h_prev),
        ("c_prev", &o.c_prev),
    ]
}

/// Every output of `quads` has the bits of `rows`'s (NaN poison included: none may be left);
/// also any two forms that must sum alike.
pub fn assert_same_bits(tag: &str, quads: &StepOutput, rows: &StepOutput) {
    for ((name, q), (_, r)) in outputs(quads).into_iter().zip(outputs(rows)) {
        assert!(q.iter().all(|v| v.is_finite()), "{name} {tag}: not finite");
        let same = q.iter().zip(r).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{name} {tag}: the two forms differ (max {})",
            max_diff(q, r)
        );
    }
}

pub fn step_quads_cases(ctx: &GpuContext) {
    for (n, &(i, h, b)) in SHAPES.iter().enumerate() {
        let seed = 1700 + 10 * n as u64;
        let gx = random((b, 4 * h), seed + 1);
        let (h0, c0) = (random((b, h), seed + 2), random((b, h), seed + 3) * 2.0);
        let active = active_rows(b);
        for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            let w = LstmWeights::init(&LstmConfig::new(i, h).peephole(peephole), seed).unwrap();
            let lw = &w.layers[0];
            let run = |tiling| {
                let state = (h0.view(), c0.view());
                kernels::lstm_step::run(ctx, gx.view(), state, lw, &active, tiling, true).unwrap()
            };
            let (quads, rows) = (run(StepTiling::Quads), run(StepTiling::Rows));
            let tag = format!("{peephole:?} I={i} H={h} B={b}");
            assert_same_bits(&tag, &quads, &rows);
            let (want_h, want_c) =
                cpu::lstm_step(gx.view(), h0.view(), c0.view(), lw, &active).unwrap();
            assert_close(&format!("h {tag}"), &quads.h, &want_h, GPU_ATOL, GPU_RTOL);
            assert_close(&format!("c {tag}"), &quads.c, &want_c, GPU_ATOL, GPU_RTOL);
        }
        let f16 = LstmWeights::init(&LstmConfig::new(i, h), seed + 5).unwrap();
        let run_f16 = |tiling| {
            let state = (h0.view(), c0.view());
            let lw = &f16.layers[0];
            kernels::lstm_step_f16::run(ctx, gx.view(), state, lw, &active, tiling, true)
        };
        // An adapter without f16 unpacking refuses f16 weights (tested in f16_weights.rs).
        if ctx.has_f16_unpack() {
            let (quads, rows) = (run_f16(StepTiling::Quads), run_f16(StepTiling::Rows));
            assert_same_bits(&format!("f16 H={h} B={b}"), &quads.unwrap(), &rows.unwrap());
        }
        gru_cases(ctx, (i, h, b), seed + 6);
    }
}

/// Both GRU forms' steps (the reset-before one's first dispatch is a quads form too).
fn gru_cases(ctx: &GpuContext, (i, h, b): (usize, usize, usize), seed: u64) {
    let gx = random((b, 3 * h), seed + 1);
    let h0 = random((b, h), seed + 2);
    let active = active_rows(b);
    for reset_after in [true, false] {
        let cfg = GruConfig::new(i, h).reset_after(reset_after);
        let w = GruWeights::init(&cfg, seed).unwrap();
        let lw = &w.layers[0];
        let run = |tiling| {
            let step = match reset_after {
                true => kernels::gru_step::run,
                false => kernels::gru_reset_before_step::run,
            };
            step(ctx, gx.view(), h0.view(), lw, &active, tiling, true).unwrap()
        };
        let tag = format!("GRU reset_after={reset_after} H={h} B={b}");
        assert_same_bits(&tag, &run(StepTiling::Quads), &run(StepTiling::Rows));
    }
}

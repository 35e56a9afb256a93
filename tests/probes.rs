//! The hardware probes and the profiled forward: they return sane numbers and check
//! their own work. No timing thresholds: only "positive and finite".

mod common;

use common::*;
use lstm_wgpu::bench::probe::{self, ProbeSizes};
use lstm_wgpu::{cpu, ForwardOptions, GpuLstm, LstmConfig, LstmWeights};

/// Smaller than `ProbeSizes::quick`: these tests check results, not speed.
const TINY: ProbeSizes = ProbeSizes {
    dispatches: 64,
    copy_bytes: 1 << 20,
    gemm_n: 96,
    repeats: 2,
};

fn positive_finite(name: &str, v: f64) {
    assert!(v.is_finite() && v > 0.0, "{name} = {v}");
}

#[test]
fn limits_are_positive_and_finite() {
    let Some(ctx) = shared_context() else { return };
    let l = probe::measure_limits(&ctx, TINY).unwrap();
    positive_finite("empty dispatch seconds", l.dispatch.seconds);
    positive_finite("copy bytes/s", l.copy.bytes_per_s);
    positive_finite("GEMM flop/s", l.gemm.flops_per_s);
    positive_finite("GEMM seconds", l.gemm.seconds);
    assert_eq!(l.dispatch.dispatches, TINY.dispatches);
    assert_eq!(l.copy.buffer_bytes, TINY.copy_bytes);
}

#[test]
fn gemm_probe_result_is_correct() {
    let Some(ctx) = shared_context() else { return };
    // Not a multiple of the 64-wide tile: the edge tiles are checked too.
    let g = probe::gemm_rate(&ctx, 100, 1).unwrap();
    assert_eq!(g.n, 100);
    // K = 100 products of U(-1, 1) values: f32 sums are good to ~1e-5 absolute.
    assert!(g.max_err < 1e-4, "GEMM probe max error {}", g.max_err);
}

#[test]
fn dispatch_probe_checks_its_chain() {
    let Some(ctx) = shared_context() else { return };
    // An odd count ends in the other ping-pong buffer.
    let d = probe::empty_dispatch(&ctx, 37, 1).unwrap();
    assert_eq!(d.dispatches, 37);
    positive_finite("empty dispatch seconds", d.seconds);
}

#[test]
fn profiled_forward_matches_forward() {
    let Some(ctx) = shared_context() else { return };
    let cfg = LstmConfig::new(5, 12).layers(2).bidirectional(true);
    let w = LstmWeights::init(&cfg, 3).unwrap();
    let x = random_input(&cfg, 6, 3, 4);
    let gpu = GpuLstm::new(ctx.clone(), &w).unwrap();
    let plain = gpu.forward(x.view(), ForwardOptions::default()).unwrap();
    let (out, profile) = gpu
        .forward_profiled(x.view(), ForwardOptions::default())
        .unwrap();
    assert_eq!(out.y, plain.y);
    assert_eq!(out.h_n, plain.h_n);
    assert_eq!(out.c_n, plain.c_n);
    let want = cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
    assert_close("profiled y", &out.y, &want.y, GPU_ATOL, GPU_RTOL);
    match profile {
        Some(p) => {
            positive_finite("projection seconds", p.projection_s);
            positive_finite("steps seconds", p.steps_s);
        }
        None => assert!(!ctx.has_timestamps(), "timestamps but no profile"),
    }
}

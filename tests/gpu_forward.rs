//! GPU forward vs the CPU reference on random data, for every config dimension.
//! Outputs are poisoned with NaN before each GPU run, so an element no kernel
//! writes fails the comparison.

mod common;

use common::*;
use lstm_wgpu::{cpu, ForwardOptions, GpuLstm, LstmConfig, LstmWeights, Peephole, StepTiling};

/// Runs CPU and GPU (both tilings) on the same random weights and inputs and compares
/// `y`, `h_n` and `c_n`.
fn compare(
    cfg: &LstmConfig,
    t: usize,
    b: usize,
    with_init: bool,
    lens: Option<&[usize]>,
    seed: u64,
) {
    let Some(ctx) = shared_context() else { return };
    let w = LstmWeights::init(cfg, seed).unwrap();
    let x = random_input(cfg, t, b, seed + 1);
    let init = with_init.then(|| random_state(cfg, b, seed + 2));
    let opts = ForwardOptions {
        initial: init.as_ref(),
        seq_lens: lens,
    };
    let want = cpu::forward(&w, x.view(), opts).unwrap();
    let mut gpu = GpuLstm::new(ctx, &w).unwrap();
    gpu.set_poison_outputs(true);
    for tiling in StepTiling::ALL {
        gpu.set_tiling(tiling);
        let got = gpu.forward(x.view(), opts).unwrap();
        let tag = format!("{cfg:?} T={t} B={b} init={with_init} lens={lens:?} {tiling:?}");
        assert_output_close(&tag, &got, &want);
    }
}

#[test]
fn awkward_shapes() {
    // B=1, T=1, H=1, H not a multiple of any tile (7, 33, 70), I ≠ H, B not a multiple of 4 or 16,
    // B and H past 64.
    for (n, &(i, h, t, b)) in [
        (1, 1, 1, 1),
        (3, 5, 1, 1),
        (5, 7, 4, 1),
        (8, 33, 6, 3),
        (20, 70, 5, 9),
        (16, 16, 3, 40),
        (2, 17, 9, 18),
        // Past one workgroup of `step_rows` (64 rows) and of `step_units` (64 units).
        (4, 66, 3, 70),
    ]
    .iter()
    .enumerate()
    {
        compare(&LstmConfig::new(i, h), t, b, false, None, 100 + n as u64);
    }
}

#[test]
fn peephole_modes() {
    for mode in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
        compare(&LstmConfig::new(6, 9).peephole(mode), 7, 3, true, None, 200);
        compare(
            &LstmConfig::new(5, 12)
                .peephole(mode)
                .layers(2)
                .bidirectional(true),
            5,
            20,
            true,
            None,
            210,
        );
    }
}

#[test]
fn three_layers_bidirectional() {
    compare(
        &LstmConfig::new(11, 13).layers(3).bidirectional(true),
        6,
        5,
        false,
        None,
        300,
    );
    compare(
        &LstmConfig::new(11, 13).layers(3).bidirectional(true),
        6,
        5,
        true,
        None,
        301,
    );
}

#[test]
fn batch_first_and_no_bias() {
    compare(
        &LstmConfig::new(4, 10).batch_first(true).layers(2),
        5,
        3,
        true,
        None,
        400,
    );
    compare(&LstmConfig::new(4, 10).bias(false), 5, 3, false, None, 401);
}

#[test]
fn initial_state_given_and_default() {
    let cfg = LstmConfig::new(7, 8).layers(2);
    compare(&cfg, 4, 6, false, None, 500);
    compare(&cfg, 4, 6, true, None, 501);
}

#[test]
fn variable_lengths() {
    let lens = [5, 1, 3, 5, 2];
    compare(&LstmConfig::new(3, 6), 5, 5, true, Some(&lens), 600);
    compare(
        &LstmConfig::new(3, 6).layers(2).bidirectional(true),
        5,
        5,
        true,
        Some(&lens),
        601,
    );
    compare(
        &LstmConfig::new(3, 6)
            .peephole(Peephole::Diagonal)
            .bidirectional(true)
            .batch_first(true),
        5,
        5,
        false,
        Some(&lens),
        602,
    );
    // 4 | H: the software adapters' quads form (the others fall back to Units/Rows),
    // both directions, Full peepholes (its c half of the operand), two layers.
    compare(
        &LstmConfig::new(3, 8)
            .peephole(Peephole::Full)
            .layers(2)
            .bidirectional(true),
        5,
        5,
        true,
        Some(&lens),
        603,
    );
}

/// A binding limit of a few steps forces the scheduler to split the sequence into
/// chunks and carry (h, c) across them.
#[test]
fn multi_chunk_long_sequence() {
    let Some(mut ctx) = try_context() else { return };
    let (t, b, cfg) = (
        23,
        3,
        LstmConfig::new(5, 6)
            .layers(2)
            .bidirectional(true)
            .peephole(Peephole::Full),
    );
    // Widest per-step row is 4H = 24 floats × B = 3 → 288 bytes a step; allow 4 steps.
    ctx.set_max_binding_bytes(4 * 288);
    let ctx = std::sync::Arc::new(ctx);
    let w = LstmWeights::init(&cfg, 700).unwrap();
    let x = random_input(&cfg, t, b, 701);
    let init = random_state(&cfg, b, 702);
    let lens = [23, 9, 14];
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let want = cpu::forward(&w, x.view(), opts).unwrap();
    let mut gpu = GpuLstm::new(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    for tiling in StepTiling::ALL {
        gpu.set_tiling(tiling);
        let before = ctx.readback_count();
        let got = gpu.forward(x.view(), opts).unwrap();
        assert_eq!(
            ctx.readback_count() - before,
            1,
            "a chunked forward still reads back once"
        );
        assert_output_close(&format!("(chunked) {tiling:?}"), &got, &want);
    }
}

#[test]
fn one_forward_is_one_readback() {
    let Some(ctx) = try_context() else { return };
    let ctx = std::sync::Arc::new(ctx);
    let cfg = LstmConfig::new(4, 8).layers(3).bidirectional(true);
    let gpu = GpuLstm::new(ctx.clone(), &LstmWeights::init(&cfg, 1).unwrap()).unwrap();
    let x = random_input(&cfg, 9, 2, 2);
    let before = ctx.readback_count();
    gpu.forward(x.view(), ForwardOptions::default()).unwrap();
    assert_eq!(ctx.readback_count() - before, 1);
}

/// The GPU-resident path: two models chained without a round trip, and a stream fed
/// in two windows with the state carried on the GPU.
#[test]
fn resident_chain_and_streaming() {
    let Some(ctx) = shared_context() else { return };
    let cfg1 = LstmConfig::new(4, 6).bidirectional(true);
    let cfg2 = LstmConfig::new(12, 5).peephole(Peephole::Diagonal);
    let (w1, w2) = (
        LstmWeights::init(&cfg1, 1).unwrap(),
        LstmWeights::init(&cfg2, 2).unwrap(),
    );
    let (g1, g2) = (
        GpuLstm::new(ctx.clone(), &w1).unwrap(),
        GpuLstm::new(ctx.clone(), &w2).unwrap(),
    );
    let x = random((7, 3, 4), 3);

    let out1 = g1
        .forward_resident(&g1.upload_sequence(x.view()).unwrap(), None, None)
        .unwrap();
    let out2 = g2.forward_resident(&out1.y, None, None).unwrap();
    let want1 = cpu::forward(&w1, x.view(), ForwardOptions::default()).unwrap();
    let want2 = cpu::forward(&w2, want1.y.view(), ForwardOptions::default()).unwrap();
    assert_close(
        "chained y",
        &g2.read_sequence(&out2.y).unwrap(),
        &want2.y,
        GPU_ATOL,
        GPU_RTOL,
    );
    let s = g2.read_state(&out2.state, 3).unwrap();
    assert_close("chained h_n", &s.h, &want2.h_n, GPU_ATOL, GPU_RTOL);

    // Stream: steps 0..4, then 4..7 starting from the first window's state.
    let z = random((7, 3, 12), 4);
    let a = g2
        .forward_resident(
            &g2.upload_sequence(z.slice(ndarray::s![..4, .., ..]))
                .unwrap(),
            None,
            None,
        )
        .unwrap();
    let b = g2
        .forward_resident(
            &g2.upload_sequence(z.slice(ndarray::s![4.., .., ..]))
                .unwrap(),
            Some(&a.state),
            None,
        )
        .unwrap();
    let whole = cpu::forward(&w2, z.view(), ForwardOptions::default()).unwrap();
    assert_close(
        "stream window 2",
        &g2.read_sequence(&b.y).unwrap(),
        &whole.y.slice(ndarray::s![4.., .., ..]).to_owned(),
        GPU_ATOL,
        GPU_RTOL,
    );
    let s = g2.read_state(&b.state, 3).unwrap();
    assert_close("stream c_n", &s.c, &whole.c_n, GPU_ATOL, GPU_RTOL);
}

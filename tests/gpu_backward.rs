//! GPU backward (fused BPTT steps + gradient GEMMs) vs the CPU reference backward, on
//! random data for every config dimension, and bit-for-bit determinism.

mod common;

use common::*;
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::{
    ForwardOptions, GpuLstm, LstmConfig, LstmOutput, LstmWeights, Peephole, StepTiling,
};

fn compare(cfg: &LstmConfig, t: usize, b: usize, lens: Option<&[usize]>, with_dy: bool, seed: u64) {
    let Some(ctx) = shared_context() else { return };
    compare_on(ctx, cfg, t, b, lens, with_dy, seed);
}

/// [`compare`] on a given context (to pick the kernel forms).
fn compare_on(
    ctx: std::sync::Arc<lstm_wgpu::GpuContext>,
    cfg: &LstmConfig,
    t: usize,
    b: usize,
    lens: Option<&[usize]>,
    with_dy: bool,
    seed: u64,
) {
    let w = LstmWeights::init(cfg, seed).unwrap();
    let x = random_input(cfg, t, b, seed + 1);
    let init = random_state(cfg, b, seed + 2);
    let yshape = if cfg.batch_first {
        (b, t, cfg.output_size())
    } else {
        (t, b, cfg.output_size())
    };
    let sshape = (cfg.num_layers * cfg.num_directions(), b, cfg.hidden_size);
    let (dy, dh, dc) = (
        random(yshape, seed + 3),
        random(sshape, seed + 4),
        random(sshape, seed + 5),
    );
    let up = Upstream {
        dy: with_dy.then(|| dy.view()),
        dh_n: Some(dh.view()),
        dc_n: Some(dc.view()),
    };
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: lens,
    };
    let (want_out, cache) = cpu::forward_train(&w, x.view(), opts).unwrap();
    let want = cpu::backward(&w, &cache, up).unwrap();
    let mut gpu = GpuLstm::new(ctx, &w).unwrap();
    gpu.set_poison_outputs(true);
    // Every forward tiling writes the training cache; check each (the adapter's own
    // choice would leave the others untested on this machine).
    for tiling in StepTiling::ALL {
        gpu.set_tiling(tiling);
        let (out, got) = gpu.forward_backward(x.view(), opts, up).unwrap();
        let tag = format!("{cfg:?} T={t} B={b} lens={lens:?} dy={with_dy} {tiling:?}");
        check(&tag, &out, &want_out, &got, &want);
    }
}

fn check(
    tag: &str,
    out: &LstmOutput,
    want_out: &LstmOutput,
    got: &cpu::Gradients,
    want: &cpu::Gradients,
) {
    assert_close(&format!("y {tag}"), &out.y, &want_out.y, GPU_ATOL, GPU_RTOL);
    assert_gradients_close(tag, got, want);
}

#[test]
fn awkward_shapes() {
    for (n, &(i, h, t, b)) in [
        (1, 1, 1, 1),
        (3, 5, 1, 2),
        (5, 7, 4, 1),
        (8, 33, 6, 3),
        (20, 17, 5, 18),
    ]
    .iter()
    .enumerate()
    {
        compare(&LstmConfig::new(i, h), t, b, None, true, 100 + n as u64);
    }
}

#[test]
fn peephole_modes() {
    for mode in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
        compare(&LstmConfig::new(4, 9).peephole(mode), 6, 3, None, true, 200);
        compare(
            &LstmConfig::new(4, 6)
                .peephole(mode)
                .layers(2)
                .bidirectional(true),
            4,
            5,
            Some(&[4, 1, 3, 4, 2]),
            true,
            210,
        );
    }
}

#[test]
fn three_layers_bidirectional_batch_first_no_bias() {
    compare(
        &LstmConfig::new(5, 7).layers(3).bidirectional(true),
        5,
        4,
        None,
        true,
        300,
    );
    compare(
        &LstmConfig::new(3, 5)
            .batch_first(true)
            .bias(false)
            .layers(2),
        4,
        2,
        Some(&[2, 4]),
        true,
        301,
    );
}

/// Many-to-one: the loss reaches the LSTM only through h_n.
#[test]
fn gradient_through_final_state_only() {
    compare(
        &LstmConfig::new(6, 8).layers(2),
        7,
        4,
        Some(&[7, 3, 5, 1]),
        false,
        400,
    );
}

#[test]
fn gradients_are_bit_identical_run_to_run() {
    let Some(ctx) = shared_context() else { return };
    let cfg = LstmConfig::new(6, 24)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    let w = LstmWeights::init(&cfg, 1).unwrap();
    let x = random_input(&cfg, 9, 20, 2);
    let dy = random((9, 20, 48), 3);
    let gpu = GpuLstm::new(ctx, &w).unwrap();
    let up = Upstream {
        dy: Some(dy.view()),
        ..Default::default()
    };
    let (_, a) = gpu
        .forward_backward(x.view(), ForwardOptions::default(), up)
        .unwrap();
    let (_, b) = gpu
        .forward_backward(x.view(), ForwardOptions::default(), up)
        .unwrap();
    assert_eq!(a.dx, b.dx);
    assert_eq!(a.params, b.params);
}

/// The backward kernel has a tiled form (hardware GPUs) and a barrier-free one (software
/// adapters), and so have the weight-gradient GEMMs (the tiled one split over T·B where
/// that is long); the adapter's choice tests one of them, so force each.
#[test]
fn both_backward_kernel_forms() {
    for software in [false, true] {
        let Some(mut ctx) = try_context() else { return };
        ctx.set_software_kernels(software);
        let ctx = std::sync::Arc::new(ctx);
        compare_on(
            ctx.clone(),
            &LstmConfig::new(5, 19).peephole(Peephole::Full).layers(2),
            5,
            11,
            Some(&[5, 2, 3, 5, 1, 4, 5, 5, 2, 3, 4]),
            true,
            500,
        );
        compare_on(
            ctx.clone(),
            &LstmConfig::new(3, 37)
                .peephole(Peephole::Diagonal)
                .bidirectional(true),
            4,
            3,
            None,
            false,
            501,
        );
        // 4 | H: the written-out forms on the software side (Full peepholes' c block,
        // both directions, lengths).
        let cfg = LstmConfig::new(4, 8)
            .peephole(Peephole::Full)
            .layers(2)
            .bidirectional(true);
        compare_on(
            ctx.clone(),
            &cfg,
            5,
            6,
            Some(&[5, 2, 3, 5, 1, 4]),
            true,
            502,
        );
        // T·B = 640 rows: the tiled form splits the weight gradients over them (2 slices).
        let cfg = LstmConfig::new(3, 9).layers(2).bidirectional(true);
        compare_on(ctx, &cfg, 40, 16, None, true, 503);
    }
}

/// Sequences longer than one storage binding: the forward keeps its training cache per
/// chunk and BPTT runs the chunks in reverse (the forward direction) or in order (the
/// reverse one), carrying (dh, dc) and the boundary step's dz across chunk edges.
#[test]
fn chunked_sequences() {
    let cases = [
        // (config, T, B, lens, dy, steps per binding)
        (
            LstmConfig::new(5, 6)
                .layers(2)
                .bidirectional(true)
                .peephole(Peephole::Diagonal),
            23,
            3,
            Some(vec![23, 9, 14]),
            true,
            4,
        ),
        (
            LstmConfig::new(4, 7).peephole(Peephole::Full),
            10,
            2,
            None,
            false,
            3,
        ),
        (
            LstmConfig::new(2, 3).bidirectional(true).batch_first(true),
            9,
            1,
            None,
            true,
            2,
        ),
        // 4 | H: the written-out software forms across chunk edges.
        (
            LstmConfig::new(4, 8)
                .bidirectional(true)
                .peephole(Peephole::Full),
            11,
            5,
            Some(vec![11, 4, 7, 11, 2]),
            true,
            3,
        ),
    ];
    for (n, (cfg, t, b, lens, dy, steps)) in cases.into_iter().enumerate() {
        let Some(mut ctx) = try_context() else { return };
        let widest = cfg
            .input_size
            .max(cfg.output_size())
            .max(4 * cfg.hidden_size);
        // The weights must fit one binding too: then a chunk may hold more steps.
        let k = cfg
            .input_size
            .max(cfg.output_size())
            .max(cfg.recurrent_width());
        let binding = (4 * b * widest * steps).max(16 * cfg.hidden_size * k);
        assert!(
            binding < 4 * b * widest * t,
            "case {n} would not be chunked"
        );
        ctx.set_max_binding_bytes(binding as u64);
        let ctx = std::sync::Arc::new(ctx);
        compare_on(ctx, &cfg, t, b, lens.as_deref(), dy, 600 + n as u64);
    }
}

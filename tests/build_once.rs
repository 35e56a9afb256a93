//! A forward of a shape it has run before creates no buffer and no bind group: the
//! job (scratch, outputs, uniforms, bind groups, staging) is kept and only the inputs
//! are rewritten. The reused job still gives fresh results (new inputs, new lengths),
//! equal to the CPU path.

mod common;

use common::{assert_close, random_input, random_state, shared_context, GPU_ATOL, GPU_RTOL};
use lstm_wgpu::{cpu, ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmWeights, Peephole};

fn check_repeat(ctx: GpuContext, cfg: &LstmConfig, t: usize, b: usize) {
    let w = LstmWeights::init(cfg, 11).unwrap();
    let gpu = GpuLstm::new(std::sync::Arc::new(ctx), &w).unwrap();
    let x1 = random_input(cfg, t, b, 1);
    gpu.forward(x1.view(), ForwardOptions::default()).unwrap();
    let before = gpu.context().creation_counts();
    // Same shape, other data, lengths and initial state: the job is reused.
    let x2 = random_input(cfg, t, b, 2);
    let s = random_state(cfg, b, 3);
    let lens: Vec<usize> = (0..b).map(|i| 1 + (i * 7) % t).collect();
    let opts = ForwardOptions {
        initial: Some(&s),
        seq_lens: Some(&lens),
    };
    let got = gpu.forward(x2.view(), opts).unwrap();
    let after = gpu.context().creation_counts();
    assert_eq!(
        after, before,
        "a repeated shape created buffers or bind groups"
    );
    let want = cpu::forward(&w, x2.view(), opts).unwrap();
    assert_close("y (reused job)", &got.y, &want.y, GPU_ATOL, GPU_RTOL);
    assert_close("h_n (reused job)", &got.h_n, &want.h_n, GPU_ATOL, GPU_RTOL);
    assert_close("c_n (reused job)", &got.c_n, &want.c_n, GPU_ATOL, GPU_RTOL);
    // Another shape builds a new job.
    let x3 = random_input(cfg, t + 1, b, 4);
    gpu.forward(x3.view(), ForwardOptions::default()).unwrap();
    assert_ne!(
        gpu.context().creation_counts(),
        after,
        "a new shape needs a new job"
    );
}

fn fresh_context() -> Option<GpuContext> {
    shared_context()?; // the loud skip / LSTM_REQUIRE_GPU policy
    Some(GpuContext::new().unwrap())
}

#[test]
fn repeated_forward_creates_nothing() {
    let Some(ctx) = fresh_context() else { return };
    let cfg = LstmConfig::new(5, 13)
        .layers(3)
        .bidirectional(true)
        .peephole(Peephole::Full);
    check_repeat(ctx, &cfg, 6, 3);
}

#[test]
fn repeated_chunked_forward_creates_nothing() {
    let Some(mut ctx) = fresh_context() else {
        return;
    };
    // Just room for the [4H, H] recurrent matrix (1,296 bytes), which holds 4 steps of the
    // widest per-row buffer (4H = 36 floats × B = 2): T = 10 runs in 3 chunks.
    ctx.set_max_binding_bytes(4 * 9 * 9 * 4);
    let cfg = LstmConfig::new(4, 9).bidirectional(true);
    check_repeat(ctx, &cfg, 10, 2);
}

/// A training step (forward with the gate cache, Dense, softmax cross-entropy, BPTT,
/// optimizer) of a shape it has run before creates nothing either, nor does a repeated
/// evaluation; the reused job keeps training (the loss moves with new batches).
#[test]
fn repeated_training_step_creates_nothing() {
    use lstm_wgpu::train::{Batch, Classifier, ClassifierParams, GpuClassifier, TrainConfig};
    let Some(ctx) = fresh_context() else { return };
    let cfg = LstmConfig::new(4, 9)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    let params = ClassifierParams::init(&cfg, 3, 1.0, 2).unwrap();
    let train = TrainConfig {
        clip_norm: Some(1.0),
        ..Default::default()
    };
    let mut model = GpuClassifier::new(std::sync::Arc::new(ctx), &params, train).unwrap();
    let (x1, x2) = (random_input(&cfg, 5, 4, 1), random_input(&cfg, 5, 4, 2));
    let y = [0, 1, 2, 1];
    let (b1, b2) = (
        Batch {
            x: x1.view(),
            targets: &y,
            seq_lens: None,
        },
        Batch {
            x: x2.view(),
            targets: &y,
            seq_lens: None,
        },
    );
    model.train_step(&b1, false).unwrap();
    model.evaluate(&b1).unwrap();
    let before = model.context().creation_counts();
    let first = model.train_step(&b2, true).unwrap().unwrap();
    let again = model.train_step(&b2, true).unwrap().unwrap();
    model.evaluate(&b1).unwrap();
    model.take_running_stats().unwrap();
    let after = model.context().creation_counts();
    assert_eq!(
        after, before,
        "a repeated training step or evaluation created buffers or bind groups"
    );
    assert!(
        again.loss < first.loss,
        "training on the same batch lowers its loss: {first:?} → {again:?}"
    );
}

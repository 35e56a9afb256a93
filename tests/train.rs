//! Training: the GPU classifier (softmax_xent, optimizer, backward kernels) against the
//! CPU reference trainer from the same seed, checkpoints, and bad training input.

mod common;

use common::*;
use lstm_wgpu::train::{
    self, Batch, Classifier, ClassifierParams, CpuClassifier, Optimizer, Target, TrainConfig,
};
use lstm_wgpu::{GpuClassifier, LstmConfig, LstmError, Peephole, PeepholeWeights};
use ndarray::Array3;

struct Case {
    lstm: LstmConfig,
    train: TrainConfig,
    t: usize,
    b: usize,
    lens: Option<Vec<usize>>,
}

fn labels(n: usize, classes: usize, seed: u64) -> Vec<usize> {
    random(n, seed)
        .iter()
        .map(|v| ((v + 1.0) * 0.5 * classes as f32) as usize % classes)
        .collect()
}

/// Five steps on one batch, GPU and CPU from the same parameters: per-step losses agree,
/// the loss goes down, and the parameters agree afterwards.
fn train_both(case: &Case, seed: u64) {
    let Some(ctx) = shared_context() else { return };
    train_both_on(ctx, case, seed);
}

/// [`train_both`] on a given context (a lowered binding limit trains in chunks).
fn train_both_on(ctx: std::sync::Arc<lstm_wgpu::GpuContext>, case: &Case, seed: u64) {
    let classes = 4;
    let params = ClassifierParams::init(&case.lstm, classes, 1.0, seed).unwrap();
    let x: Array3<f32> = random_input(&case.lstm, case.t, case.b, seed + 1);
    let n = if case.train.target == Target::LastStep {
        case.b
    } else {
        case.t * case.b
    };
    let y = labels(n, classes, seed + 2);
    let batch = Batch {
        x: x.view(),
        targets: &y,
        seq_lens: case.lens.as_deref(),
    };
    let mut cpu = CpuClassifier::new(params.clone(), case.train.clone()).unwrap();
    let mut gpu = GpuClassifier::new(ctx, &params, case.train.clone()).unwrap();
    assert_close(
        "initial logits",
        &gpu.logits(x.view(), case.lens.as_deref()).unwrap(),
        &cpu.logits(x.view(), case.lens.as_deref()).unwrap(),
        GPU_ATOL,
        GPU_RTOL,
    );
    let mut losses = Vec::new();
    for step in 0..5 {
        let c = cpu.train_step(&batch, true).unwrap().unwrap();
        let g = gpu.train_step(&batch, true).unwrap().unwrap();
        assert!(
            (c.loss - g.loss).abs() <= 1e-4 + 1e-3 * c.loss.abs(),
            "step {step}: cpu loss {} gpu loss {}",
            c.loss,
            g.loss
        );
        assert_eq!(c.correct, g.correct, "step {step}: correct");
        losses.push(g.loss);
    }
    assert!(losses[4] < losses[0], "loss did not go down: {losses:?}");
    let (pc, pg) = (cpu.params().unwrap(), gpu.params().unwrap());
    // Five Adam steps of size ~lr move every parameter by up to 5e-3: compare at 1e-4.
    for (l, (a, b)) in pg.lstm.layers.iter().zip(&pc.lstm.layers).enumerate() {
        assert_close(&format!("w_ih[{l}]"), &a.w_ih, &b.w_ih, 1e-4, 1e-3);
        assert_close(&format!("w_hh[{l}]"), &a.w_hh, &b.w_hh, 1e-4, 1e-3);
        if let (Some(x), Some(y)) = (&a.b_ih, &b.b_ih) {
            assert_close(&format!("b[{l}]"), x, y, 1e-4, 1e-3);
        }
        if let (PeepholeWeights::Diagonal(x), PeepholeWeights::Diagonal(y)) =
            (&a.peephole, &b.peephole)
        {
            assert_close(&format!("p[{l}]"), &x.clone(), &y.clone(), 1e-4, 1e-3);
        }
    }
    assert_close("fc.weight", &pg.dense.weight, &pc.dense.weight, 1e-4, 1e-3);
    assert_close("fc.bias", &pg.dense.bias, &pc.dense.bias, 1e-4, 1e-3);
    let (ec, eg) = (cpu.evaluate(&batch).unwrap(), gpu.evaluate(&batch).unwrap());
    assert!(
        (ec.loss - eg.loss).abs() <= 1e-4 + 1e-3 * ec.loss,
        "evaluate: {ec:?} vs {eg:?}"
    );
}

#[test]
fn last_step_adam() {
    let case = Case {
        lstm: LstmConfig::new(3, 5),
        train: TrainConfig {
            lr: 1e-2,
            ..Default::default()
        },
        t: 4,
        b: 6,
        lens: None,
    };
    train_both(&case, 1);
}

/// Sequences longer than one storage binding train in chunks (forward and BPTT carry
/// across chunk boundaries), matching the CPU trainer: here a binding holds 3 of 11 steps.
#[test]
fn last_step_training_in_chunks() {
    let Some(mut ctx) = try_context() else { return };
    let lstm = LstmConfig::new(3, 5)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    // Widest per-step row: 4H = 20 floats × B = 6 rows = 480 bytes; the weights fit too.
    ctx.set_max_binding_bytes(3 * 480);
    let case = Case {
        lstm,
        train: TrainConfig {
            lr: 1e-2,
            clip_norm: Some(1.0),
            ..Default::default()
        },
        t: 11,
        b: 6,
        lens: Some(vec![11, 4, 9, 1, 11, 7]),
    };
    train_both_on(std::sync::Arc::new(ctx), &case, 31);
}

#[test]
fn every_step_sgd_momentum_clip_and_decay() {
    let train = TrainConfig {
        lr: 0.1,
        optimizer: Optimizer::Sgd { momentum: 0.9 },
        weight_decay: 1e-3,
        clip_norm: Some(0.5),
        target: Target::EveryStep,
    };
    let case = Case {
        lstm: LstmConfig::new(3, 6).batch_first(true),
        train,
        t: 5,
        b: 3,
        lens: Some(vec![5, 2, 4]),
    };
    train_both(&case, 2);
}

#[test]
fn bidirectional_two_layers_peepholes_clipped_adam() {
    let train = TrainConfig {
        lr: 1e-2,
        clip_norm: Some(1.0),
        ..Default::default()
    };
    let lstm = LstmConfig::new(4, 7)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    train_both(
        &Case {
            lstm,
            train,
            t: 6,
            b: 5,
            lens: Some(vec![6, 1, 3, 6, 2]),
        },
        3,
    );
    let lstm = LstmConfig::new(2, 3).peephole(Peephole::Full);
    train_both(
        &Case {
            lstm,
            train: TrainConfig {
                lr: 1e-2,
                ..Default::default()
            },
            t: 3,
            b: 17,
            lens: None,
        },
        4,
    );
}

#[test]
fn checkpoint_round_trip_and_shape_mismatch() {
    let cfg = LstmConfig::new(5, 6).layers(2);
    let params = ClassifierParams::init(&cfg, 3, 1.0, 9).unwrap();
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    train::save_checkpoint(&path, &params).unwrap();
    assert_eq!(
        train::load_checkpoint(&path, Some((&cfg, 3))).unwrap(),
        params
    );
    let e = train::load_checkpoint(&path, Some((&LstmConfig::new(5, 7).layers(2), 3))).unwrap_err();
    assert!(
        matches!(e, LstmError::Shape { .. }) && e.to_string().contains("hidden_size: 7"),
        "{e}"
    );
    let e = train::load_checkpoint(&path, Some((&cfg, 10))).unwrap_err();
    assert!(e.to_string().contains("10 classes"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_targets() {
    let cfg = LstmConfig::new(2, 3);
    let params = ClassifierParams::init(&cfg, 3, 0.0, 1).unwrap();
    let mut cpu = CpuClassifier::new(params, TrainConfig::default()).unwrap();
    let x = random((4, 2, 2), 1);
    let e = cpu
        .train_step(
            &Batch {
                x: x.view(),
                targets: &[0, 3],
                seq_lens: None,
            },
            false,
        )
        .unwrap_err();
    assert!(e.to_string().contains("label 3"), "{e}");
    let e = cpu
        .train_step(
            &Batch {
                x: x.view(),
                targets: &[0],
                seq_lens: None,
            },
            false,
        )
        .unwrap_err();
    assert!(e.to_string().contains("targets"), "{e}");
}

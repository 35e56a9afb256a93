//! Two training runs with the same seed give bit-identical weights and loss curves, on
//! the CPU path and on the GPU path (every reduction on either path sums in a fixed
//! order: no atomics, no data-dependent scheduling). Across devices or adapters the
//! results agree to tolerance, not to the bit (different summation order and
//! transcendental implementations).

mod common;

use common::{random, shared_context};
use lstm_wgpu::train::{
    fit, ClassifierParams, Dataset, Device, FitConfig, History, Init, LrSchedule, TrainConfig,
};
use lstm_wgpu::LstmConfig;

fn data(seed: u64) -> Dataset {
    let x = random((24, 5, 3), seed);
    let labels = (0..24).map(|i| (i * 7 + seed as usize) % 4).collect();
    Dataset::new(x, labels).unwrap()
}

/// Trains a small bidirectional classifier for 2 epochs; returns the curve and the weights.
fn train(device: &Device) -> (History, ClassifierParams) {
    let lstm = LstmConfig::new(3, 6).bidirectional(true).batch_first(true);
    let params = ClassifierParams::init_with(Init::Keras, &lstm, 4, 1.0, 5).unwrap();
    let cfg = TrainConfig {
        clip_norm: Some(1.0),
        weight_decay: 1e-4,
        ..Default::default()
    };
    let mut model = device.classifier(&params, cfg).unwrap();
    let fit_cfg = FitConfig {
        epochs: 2,
        batch: 5,
        lr: 1e-2,
        schedule: LrSchedule::Cosine,
        seed: 9,
    };
    let history = fit(model.as_mut(), &data(1), &data(2), &fit_cfg, &mut ()).unwrap();
    (history, model.params().unwrap())
}

fn assert_bit_identical(device: &Device, name: &str) {
    let (h1, p1) = train(device);
    let (h2, p2) = train(device);
    let bits = |h: &History| -> Vec<u64> {
        h.epochs
            .iter()
            .flat_map(|e| {
                [
                    e.train_loss.to_bits(),
                    e.train_acc.to_bits(),
                    e.eval_acc.to_bits(),
                ]
            })
            .collect()
    };
    assert_eq!(
        bits(&h1),
        bits(&h2),
        "{name}: loss curves differ between two runs"
    );
    assert!(p1 == p2, "{name}: weights differ between two runs");
    // The runs did train: the weights moved from their initial values.
    let lstm = LstmConfig::new(3, 6).bidirectional(true).batch_first(true);
    let init = ClassifierParams::init_with(Init::Keras, &lstm, 4, 1.0, 5).unwrap();
    assert!(
        p1.dense.weight != init.dense.weight,
        "{name}: nothing was trained"
    );
}

#[test]
fn cpu_training_is_bit_identical_run_to_run() {
    assert_bit_identical(&Device::Cpu, "CPU");
}

#[test]
fn gpu_training_is_bit_identical_run_to_run() {
    let Some(ctx) = shared_context() else { return };
    assert_bit_identical(&Device::Gpu(ctx), "GPU");
}

/// `fit` reads nothing back inside an epoch: the loss and accuracy accumulate on the GPU
/// and are read once at its end (plus one readback per evaluation batch). The running
/// figures equal the per-step figures summed on the CPU path.
#[test]
fn fit_reads_back_once_per_epoch() {
    // A context of its own, so that its readback count is this test's alone.
    if shared_context().is_none() {
        return;
    }
    let ctx = std::sync::Arc::new(lstm_wgpu::GpuContext::new().unwrap());
    let before = ctx.readback_count();
    let (history, _) = train(&Device::Gpu(ctx.clone()));
    // 2 epochs × (24 / 5 → 5 steps): one running-stats readback and one evaluation
    // batch (24 ≤ 500 rows) per epoch; then `params()` once.
    assert_eq!(
        ctx.readback_count() - before,
        2 * 2 + 1,
        "readbacks inside an epoch"
    );
    let (cpu_history, _) = train(&Device::Cpu);
    for (g, c) in history.epochs.iter().zip(&cpu_history.epochs) {
        assert!((g.train_loss - c.train_loss).abs() < 1e-4, "{g:?} vs {c:?}");
        assert_eq!(g.train_acc, c.train_acc, "{g:?} vs {c:?}");
    }
}

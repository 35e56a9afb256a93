//! The GRU classifier trained on the GPU (`GpuClassifier::new_gru`) is the CPU's model
//! (`GruClassifier`): the same losses and parameters step by step (both biases, the
//! clip norm, weight decay), the padded gate slots stay exactly zero, and a run stopped
//! after an epoch resumes from its `TrainingState` to the same weights bit for bit.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{random, shared_context};
use lstm_wgpu::train::{
    fit, fit_from, Batch, Classifier, Dataset, Device, FitConfig, FitObserver, GpuClassifier,
    GruClassifierParams, History, Init, LrSchedule, OptimizerState, Target, TrainConfig,
    TrainingState,
};
use lstm_wgpu::{GpuContext, GruConfig};

/// Two layers, both directions (the second layer's input is 2H wide): every kind of
/// slot. H = 17 and B = 5 are multiples of no workgroup size.
fn gru_cfg() -> GruConfig {
    GruConfig::new(3, 17)
        .layers(2)
        .bidirectional(true)
        .batch_first(true)
}

/// PyTorch's init: `b_ih` and `b_hh` random and different, so a bias trained as their
/// sum shows.
fn params(cfg: &GruConfig) -> GruClassifierParams {
    GruClassifierParams::init(Init::Torch, cfg, 4, 5).unwrap()
}

/// A clip norm small enough to bind on every step: a gradient that leaks into the
/// padded slots (or a bias counted once instead of twice) changes every update.
fn train_cfg(target: Target) -> TrainConfig {
    TrainConfig {
        lr: 1e-2,
        clip_norm: Some(0.05),
        weight_decay: 1e-3,
        target,
        ..Default::default()
    }
}

fn max_diff(a: &GruClassifierParams, b: &GruClassifierParams) -> f32 {
    let mut d = 0.0f32;
    let mut see = |x: &[f32], y: &[f32]| {
        assert_eq!(x.len(), y.len());
        d = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(d, f32::max);
    };
    for (l, m) in a.gru.layers.iter().zip(&b.gru.layers) {
        see(l.w_ih.as_slice().unwrap(), m.w_ih.as_slice().unwrap());
        see(l.w_hh.as_slice().unwrap(), m.w_hh.as_slice().unwrap());
        for (p, q) in [(&l.b_ih, &m.b_ih), (&l.b_hh, &m.b_hh)] {
            see(
                p.as_ref().unwrap().as_slice().unwrap(),
                q.as_ref().unwrap().as_slice().unwrap(),
            );
        }
    }
    see(
        a.dense.weight.as_slice().unwrap(),
        b.dense.weight.as_slice().unwrap(),
    );
    see(
        a.dense.bias.as_slice().unwrap(),
        b.dense.bias.as_slice().unwrap(),
    );
    d
}

/// Steps of the GPU and the CPU model on the same batches: losses, parameters and
/// moments within 1e-4 after each.
fn gpu_matches_cpu(ctx: &Arc<GpuContext>, target: Target) {
    let cfg = gru_cfg();
    let (t, b) = (6, 5);
    let p = params(&cfg);
    let mut gpu = GpuClassifier::new_gru(ctx.clone(), &p, train_cfg(target)).unwrap();
    let mut cpu = Device::Cpu.gru_classifier(&p, train_cfg(target)).unwrap();
    let rows = if target == Target::LastStep { b } else { t * b };
    for step in 0..4u64 {
        let x = random((b, t, 3), 10 + step);
        let targets: Vec<usize> = (0..rows).map(|i| (i * 3 + step as usize) % 4).collect();
        let batch = Batch {
            x: x.view(),
            targets: &targets,
            seq_lens: None,
        };
        let g = gpu.train_step(&batch, true).unwrap().unwrap();
        let c = cpu.train_step(&batch, true).unwrap().unwrap();
        assert!(
            (g.loss - c.loss).abs() < 1e-4,
            "{target:?} step {step}: loss {} vs {}",
            g.loss,
            c.loss
        );
        let d = max_diff(&gpu.gru_params().unwrap(), &cpu.gru_params().unwrap());
        assert!(d < 1e-4, "{target:?} step {step}: parameters differ by {d}");
    }
    let (gs, cs) = (
        gpu.gru_optimizer_state().unwrap(),
        cpu.gru_optimizer_state().unwrap(),
    );
    assert_eq!(gs.step, cs.step);
    assert!(
        max_diff(&gs.m, &cs.m) < 1e-4,
        "{target:?}: first moments differ"
    );
    assert!(
        max_diff(&gs.v, &cs.v) < 1e-4,
        "{target:?}: second moments differ"
    );
    let padding = gpu.gru_padding().unwrap();
    assert!(!padding.is_empty());
    assert!(
        padding.iter().all(|&v| v.to_bits() == 0),
        "{target:?}: a padded slot (or its moments) is no longer +0.0"
    );
}

/// In each kernel form on a context of its own: the GEMMs that mask, split and re-pack
/// run `matmul.wgsl`'s tiled `main` on a hardware adapter, `main_rows` on a software one.
#[test]
fn gpu_gru_classifier_matches_the_cpu_one() {
    for software in [false, true] {
        let Some(mut ctx) = common::try_context() else {
            return;
        };
        ctx.set_software_kernels(software);
        gpu_matches_cpu(&Arc::new(ctx), Target::LastStep);
    }
}

#[test]
fn gpu_gru_classifier_matches_the_cpu_one_per_step() {
    let Some(ctx) = shared_context() else { return };
    gpu_matches_cpu(&ctx, Target::EveryStep);
}

/// The padded slots are zero on upload and stay +0.0 (weights and moments) through
/// many updates, and an LSTM classifier has none to report.
#[test]
fn padded_slots_stay_exactly_zero() {
    let Some(ctx) = shared_context() else { return };
    let cfg = gru_cfg();
    let cfg1 = TrainConfig {
        clip_norm: None,
        ..train_cfg(Target::LastStep)
    };
    let mut gpu = GpuClassifier::new_gru(ctx.clone(), &params(&cfg), cfg1).unwrap();
    assert!(gpu.gru_padding().unwrap().iter().all(|&v| v.to_bits() == 0));
    let x = random((7, 4, 3), 1);
    let batch = Batch {
        x: x.view(),
        targets: &[0, 1, 2, 3, 0, 1, 2],
        seq_lens: Some(&[4, 1, 3, 2, 4, 4, 2]),
    };
    for _ in 0..10 {
        gpu.train_step(&batch, false).unwrap();
    }
    let padding = gpu.gru_padding().unwrap();
    let worst = padding.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    assert!(
        padding.iter().all(|&v| v.to_bits() == 0),
        "padding reached {worst}"
    );
    // Keras's reset-before GRU keeps ∂n in another slot: refused, not mistrained.
    let before = params(&cfg.clone().reset_after(false));
    let err = GpuClassifier::new_gru(ctx.clone(), &before, train_cfg(Target::LastStep));
    assert!(err.err().unwrap().to_string().contains("reset_after"));
    let lstm = lstm_wgpu::LstmConfig::new(3, 4);
    let p = lstm_wgpu::train::ClassifierParams::init(&lstm, 2, 0.0, 1).unwrap();
    let lstm_model = GpuClassifier::new(ctx, &p, TrainConfig::default()).unwrap();
    assert!(lstm_model.gru_padding().is_err());
    assert!(lstm_model.gru_params().is_err());
}

fn data(seed: u64) -> Dataset {
    let x = random((22, 5, 3), seed);
    let labels = (0..22).map(|i| (i * 7 + seed as usize) % 4).collect();
    Dataset::new(x, labels).unwrap()
}

fn fit_cfg() -> FitConfig {
    FitConfig {
        epochs: 3,
        batch: 4,
        lr: 1e-2,
        schedule: LrSchedule::Cosine,
        seed: 9,
    }
}

/// Saves a GRU run's state after epoch `stop_after`.
struct StopAfter {
    stop_after: usize,
    path: std::path::PathBuf,
}

impl FitObserver for StopAfter {
    fn after_epoch(&mut self, model: &dyn Classifier, history: &History) -> lstm_wgpu::Result<()> {
        if history.epochs.len() == self.stop_after {
            let notes = BTreeMap::from([("why".to_string(), "test".to_string())]);
            let state = TrainingState::<GruClassifierParams>::capture_as(model, history, notes)?;
            state.save(&self.path)?;
        }
        Ok(())
    }
}

/// The uninterrupted run's parameters, and those of a run stopped after epoch 1 (only
/// its state file left), loaded, restored on `resume_on` and finished.
fn whole_and_resumed(
    cfg: GruConfig,
    first: &Device,
    resume_on: &Device,
    tag: &str,
) -> (GruClassifierParams, GruClassifierParams) {
    let tcfg = train_cfg(Target::LastStep);
    let mut whole = first.gru_classifier(&params(&cfg), tcfg.clone()).unwrap();
    fit(whole.as_mut(), &data(1), &data(2), &fit_cfg(), &mut ()).unwrap();
    let dir =
        std::env::temp_dir().join(format!("lstm-wgpu-gru-resume-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.safetensors");
    let mut stop = StopAfter {
        stop_after: 1,
        path: path.clone(),
    };
    let mut part = first.gru_classifier(&params(&cfg), tcfg.clone()).unwrap();
    fit(part.as_mut(), &data(1), &data(2), &fit_cfg(), &mut stop).unwrap();
    drop(part);
    let state = TrainingState::<GruClassifierParams>::load_as(&path).unwrap();
    assert_eq!(state.history.epochs.len(), 1);
    assert_eq!(state.notes.get("why").map(String::as_str), Some("test"));
    assert!(state.optimizer.step > 0);
    let mut resumed = state.restore(resume_on, tcfg).unwrap();
    let h = fit_from(
        resumed.as_mut(),
        &data(1),
        &data(2),
        &fit_cfg(),
        state.history,
        &mut (),
    )
    .unwrap();
    assert_eq!(h.epochs.len(), 3);
    std::fs::remove_dir_all(&dir).ok();
    (whole.gru_params().unwrap(), resumed.gru_params().unwrap())
}

#[test]
fn cpu_gru_resume_reaches_the_same_weights_bit_for_bit() {
    // Keras's reset-before GRU resumes as itself (the state file keeps reset_after).
    let before = gru_cfg().reset_after(false);
    let (whole, resumed) = whole_and_resumed(before, &Device::Cpu, &Device::Cpu, "cpu-before");
    assert!(!resumed.gru.config.reset_after);
    assert!(
        whole == resumed,
        "CPU, reset before: resumed GRU weights differ"
    );
    let (whole, resumed) = whole_and_resumed(gru_cfg(), &Device::Cpu, &Device::Cpu, "cpu");
    assert!(whole == resumed, "CPU: resumed GRU weights differ");
}

#[test]
fn gpu_gru_resume_reaches_the_same_weights_bit_for_bit() {
    let Some(ctx) = shared_context() else { return };
    let gpu = Device::Gpu(ctx);
    let (whole, resumed) = whole_and_resumed(gru_cfg(), &gpu, &gpu, "gpu");
    assert!(whole == resumed, "GPU: resumed GRU weights differ");
}

#[test]
fn a_gpu_gru_state_resumes_on_the_cpu_path() {
    let Some(ctx) = shared_context() else { return };
    let (whole, resumed) = whole_and_resumed(gru_cfg(), &Device::Gpu(ctx), &Device::Cpu, "cross");
    let d = max_diff(&whole, &resumed);
    assert!(d < 1e-3, "GPU → CPU resume drifted by {d}");
}

/// The optimizer state round-trips on each device; a state of another shape is refused.
#[test]
fn gru_optimizer_state_round_trips_on_each_device() {
    let mut devices = vec![Device::Cpu];
    devices.extend(shared_context().map(Device::Gpu));
    let cfg = gru_cfg();
    for device in devices {
        let tcfg = train_cfg(Target::LastStep);
        let mut model = device.gru_classifier(&params(&cfg), tcfg.clone()).unwrap();
        let x = random((4, 5, 3), 3);
        let batch = Batch {
            x: x.view(),
            targets: &[0, 1, 2, 3],
            seq_lens: None,
        };
        model.train_step(&batch, false).unwrap();
        let s = model.gru_optimizer_state().unwrap();
        assert_eq!(s.step, 1);
        assert!(s.v.gru.layers[0]
            .b_hh
            .as_ref()
            .unwrap()
            .iter()
            .any(|&v| v > 0.0));
        let mut other = device.gru_classifier(&params(&cfg), tcfg).unwrap();
        other.set_gru_optimizer_state(&s).unwrap();
        assert!(
            other.gru_optimizer_state().unwrap() == s,
            "{}",
            model.device_name()
        );
        assert!(other.params().is_err() && other.optimizer_state().is_err());
        let wrong = params(&GruConfig::new(3, 6).batch_first(true));
        let bad = OptimizerState {
            step: 1,
            m: wrong.clone(),
            v: wrong,
        };
        assert!(other.set_gru_optimizer_state(&bad).is_err());
    }
}

//! Faults that lose nothing: a run stopped after any epoch and resumed from its
//! `TrainingState` ends with the same weights, bit for bit, as a run that never stopped
//! (CPU and GPU; across devices to tolerance); a loss that turns non-finite stops
//! training before the last good state is overwritten; checkpoints are written
//! atomically, so a write cut short never damages the previous file.

mod common;

use std::collections::BTreeMap;

use common::{random, shared_context};
use lstm_wgpu::train::checkpoint::{temp_path, write_atomic};
use lstm_wgpu::train::{
    fit, fit_from, Batch, Classifier, ClassifierParams, Dataset, Device, FitConfig, FitObserver,
    History, Init, LrSchedule, OptimizerState, StepStats, TrainConfig, TrainingState,
};
use lstm_wgpu::{LstmConfig, Peephole};
use ndarray::{Array2, ArrayView3};

fn data(seed: u64) -> Dataset {
    let x = random((22, 5, 3), seed);
    let labels = (0..22).map(|i| (i * 7 + seed as usize) % 4).collect();
    Dataset::new(x, labels).unwrap()
}

fn params() -> ClassifierParams {
    // Two layers, bidirectional, diagonal peepholes: every kind of optimizer slot.
    let lstm = LstmConfig::new(3, 5)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal)
        .batch_first(true);
    ClassifierParams::init_with(Init::Keras, &lstm, 4, 1.0, 5).unwrap()
}

fn train_cfg() -> TrainConfig {
    TrainConfig {
        clip_norm: Some(1.0),
        weight_decay: 1e-4,
        ..Default::default()
    }
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

/// Saves the state after `stop_after` epochs to a file and returns what it holds.
struct StopAfter {
    stop_after: usize,
    path: std::path::PathBuf,
}

impl FitObserver for StopAfter {
    fn after_epoch(&mut self, model: &dyn Classifier, history: &History) -> lstm_wgpu::Result<()> {
        if history.epochs.len() == self.stop_after {
            let notes = BTreeMap::from([("why".to_string(), "test".to_string())]);
            TrainingState::capture(model, history, notes)?.save(&self.path)?;
        }
        Ok(())
    }
}

/// The uninterrupted run's weights, and the weights of a run stopped after epoch 1,
/// saved, loaded, restored on `resume_on` and finished.
fn whole_and_resumed(
    first: &Device,
    resume_on: &Device,
    dir: &std::path::Path,
) -> (ClassifierParams, ClassifierParams) {
    let mut whole = first.classifier(&params(), train_cfg()).unwrap();
    fit(whole.as_mut(), &data(1), &data(2), &fit_cfg(), &mut ()).unwrap();

    let path = dir.join("state.safetensors");
    let mut stop = StopAfter {
        stop_after: 1,
        path: path.clone(),
    };
    let mut first_part = first.classifier(&params(), train_cfg()).unwrap();
    let short = FitConfig {
        epochs: 3,
        ..fit_cfg()
    };
    fit(first_part.as_mut(), &data(1), &data(2), &short, &mut stop).unwrap();
    drop(first_part); // the "crash": only the file is left
    let state = TrainingState::load(&path).unwrap();
    assert_eq!(state.history.epochs.len(), 1);
    assert_eq!(state.notes.get("why").map(String::as_str), Some("test"));
    assert!(state.optimizer.step > 0);
    let mut resumed = state.restore(resume_on, train_cfg()).unwrap();
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
    (whole.params().unwrap(), resumed.params().unwrap())
}

#[test]
fn cpu_resume_reaches_the_same_weights_bit_for_bit() {
    let dir = tempdir("cpu");
    let (whole, resumed) = whole_and_resumed(&Device::Cpu, &Device::Cpu, &dir);
    assert!(whole == resumed, "CPU: resumed weights differ");
}

#[test]
fn gpu_resume_reaches_the_same_weights_bit_for_bit() {
    let Some(ctx) = shared_context() else { return };
    let dir = tempdir("gpu");
    let gpu = Device::Gpu(ctx);
    let (whole, resumed) = whole_and_resumed(&gpu, &gpu, &dir);
    assert!(whole == resumed, "GPU: resumed weights differ");
}

#[test]
fn a_gpu_state_resumes_on_the_cpu_path() {
    let Some(ctx) = shared_context() else { return };
    let dir = tempdir("cross");
    let (whole, resumed) = whole_and_resumed(&Device::Gpu(ctx), &Device::Cpu, &dir);
    let diff = whole
        .dense
        .weight
        .iter()
        .zip(&resumed.dense.weight)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-3, "GPU → CPU resume drifted by {diff}");
}

#[test]
fn optimizer_state_round_trips_on_each_device() {
    let mut devices = vec![Device::Cpu];
    devices.extend(shared_context().map(Device::Gpu));
    for device in devices {
        let mut model = device.classifier(&params(), train_cfg()).unwrap();
        let x = random((4, 5, 3), 3);
        let batch = Batch {
            x: x.view(),
            targets: &[0, 1, 2, 3],
            seq_lens: None,
        };
        model.train_step(&batch, false).unwrap();
        let s = model.optimizer_state().unwrap();
        assert_eq!(s.step, 1);
        assert!(s.v.dense.weight.iter().any(|&v| v > 0.0), "no moments");
        let mut other = device.classifier(&params(), train_cfg()).unwrap();
        other.set_optimizer_state(&s).unwrap();
        assert!(
            other.optimizer_state().unwrap() == s,
            "{}",
            model.device_name()
        );
        // A state of another shape is refused, not written.
        let lstm = LstmConfig::new(3, 6).batch_first(true);
        let wrong = ClassifierParams::init(&lstm, 4, 0.0, 1).unwrap();
        let bad = OptimizerState {
            step: 1,
            m: wrong.clone(),
            v: wrong,
        };
        assert!(other.set_optimizer_state(&bad).is_err());
    }
}

/// A classifier whose loss turns NaN in epoch `nan_in`.
struct Diverging {
    inner: Box<dyn Classifier>,
    epoch: usize,
    nan_in: usize,
}

impl Classifier for Diverging {
    fn train_step(&mut self, b: &Batch, s: bool) -> lstm_wgpu::Result<Option<StepStats>> {
        self.inner.train_step(b, s)
    }
    fn take_running_stats(&mut self) -> lstm_wgpu::Result<StepStats> {
        self.epoch += 1;
        let mut s = self.inner.take_running_stats()?;
        if self.epoch == self.nan_in {
            s.loss = f32::NAN;
        }
        Ok(s)
    }
    fn evaluate(&self, b: &Batch) -> lstm_wgpu::Result<StepStats> {
        self.inner.evaluate(b)
    }
    fn logits(&self, x: ArrayView3<f32>, l: Option<&[usize]>) -> lstm_wgpu::Result<Array2<f32>> {
        self.inner.logits(x, l)
    }
    fn set_lr(&mut self, lr: f32) {
        self.inner.set_lr(lr)
    }
    fn params(&self) -> lstm_wgpu::Result<ClassifierParams> {
        self.inner.params()
    }
    fn device_name(&self) -> String {
        self.inner.device_name()
    }
    fn optimizer_state(&self) -> lstm_wgpu::Result<OptimizerState> {
        self.inner.optimizer_state()
    }
    fn set_optimizer_state(&mut self, s: &OptimizerState) -> lstm_wgpu::Result<()> {
        self.inner.set_optimizer_state(s)
    }
}

/// Saves the state after every epoch, as `lstm-wgpu train` does.
struct EveryEpoch(std::path::PathBuf);

impl FitObserver for EveryEpoch {
    fn after_epoch(&mut self, model: &dyn Classifier, history: &History) -> lstm_wgpu::Result<()> {
        TrainingState::capture(model, history, BTreeMap::new())?.save(&self.0)
    }
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_state() {
    let dir = tempdir("nan");
    let path = dir.join("state.safetensors");
    let mut model = Diverging {
        inner: Device::Cpu.classifier(&params(), train_cfg()).unwrap(),
        epoch: 0,
        nan_in: 2,
    };
    let err = fit(
        &mut model,
        &data(1),
        &data(2),
        &fit_cfg(),
        &mut EveryEpoch(path.clone()),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("became NaN in epoch 2"), "{err}");
    assert!(err.contains("stopped after epoch 1"), "{err}");
    let state = TrainingState::load(&path).unwrap();
    assert_eq!(
        state.history.epochs.len(),
        1,
        "the good state was overwritten"
    );
    assert!(state.history.epochs[0].train_loss.is_finite());
}

#[test]
fn a_write_cut_short_never_damages_the_previous_state() {
    let dir = tempdir("atomic");
    let path = dir.join("state.safetensors");
    let model = Device::Cpu.classifier(&params(), train_cfg()).unwrap();
    let state =
        TrainingState::capture(model.as_ref(), &History::default(), BTreeMap::new()).unwrap();
    state.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    // A kill during the next write leaves a truncated temporary file behind ...
    std::fs::write(temp_path(&path), &good[..good.len() / 3]).unwrap();
    assert!(TrainingState::load(&path).unwrap() == state);
    // ... and the write after it replaces the leftover.
    state.save(&path).unwrap();
    assert!(!temp_path(&path).exists());
    let good = std::fs::read(&path).unwrap();

    // A write that fails (its temporary path is taken by a folder) reports the error
    // and leaves the previous file as it was.
    std::fs::create_dir(temp_path(&path)).unwrap();
    let err = write_atomic(&path, b"new contents").unwrap_err();
    assert!(err.to_string().contains("state.safetensors"), "{err}");
    assert!(
        std::fs::read(&path).unwrap() == good,
        "the previous file changed"
    );

    // A truncated state file itself is a clear error, not a panic.
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    assert!(TrainingState::load(&cut).is_err());
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

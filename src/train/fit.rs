//! The training loop as a library call: epochs over shuffled batches, a learning-rate
//! schedule, per-epoch evaluation, and callbacks for progress. `lstm-wgpu train` only
//! wraps it (progress bars, printing, the checkpoint and the plot).

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::classifier::{Batch, Classifier};
use super::data::Dataset;
use crate::error::{LstmError, Result};

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LrSchedule {
    /// The peak rate throughout.
    Constant,
    /// Cosine decay from the peak to 5% of it over all steps.
    #[default]
    Cosine,
}

impl LrSchedule {
    /// The rate at `step` of `total` for peak rate `peak`.
    pub fn lr_at(self, peak: f32, step: usize, total: usize) -> f32 {
        match self {
            LrSchedule::Constant => peak,
            LrSchedule::Cosine => {
                let f = step as f32 / total.max(1) as f32;
                peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f32::consts::PI * f).cos()))
            }
        }
    }
}

/// The loop's settings (the optimizer's are the classifier's `TrainConfig`).
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate, set on the classifier before every step.
    pub lr: f32,
    pub schedule: LrSchedule,
    /// Seeds the shuffling of every epoch.
    pub seed: u64,
}

/// One epoch's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's training batches.
    pub train_loss: f64,
    /// Fraction of training examples classified correctly, `[0, 1]`.
    pub train_acc: f64,
    /// Fraction of the evaluation set classified correctly, `[0, 1]`.
    pub eval_acc: f64,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
}

/// What [`fit`] returns: one entry per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochStats>,
}

/// Callbacks for progress; every method has an empty default.
pub trait FitObserver {
    /// An epoch of `steps` batches begins.
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// Step `step` (from 1) of the epoch ended. (Its loss stays on the device until the
    /// epoch ends: reading it every step would stall a GPU pipeline.)
    fn step_end(&mut self, _step: usize) {}
    /// An epoch ended and was evaluated.
    fn epoch_end(&mut self, _stats: &EpochStats) {}
    /// After [`epoch_end`](Self::epoch_end), with the model and every finished epoch: the
    /// place to write a checkpoint (see `TrainingState`). An error stops training.
    fn after_epoch(&mut self, _model: &dyn Classifier, _history: &History) -> Result<()> {
        Ok(())
    }
}

/// An observer that observes nothing.
impl FitObserver for () {}

/// Trains `model` on `train` for `cfg.epochs` epochs, evaluating on `eval` after each.
/// Nothing is read back inside an epoch: the loss and accuracy accumulate on the device
/// and are read once at its end. Stops with an error when the loss stops being finite
/// (before the observer's `after_epoch`, so the last checkpoint written is a good one).
pub fn fit(
    model: &mut dyn Classifier,
    train: &Dataset,
    eval: &Dataset,
    cfg: &FitConfig,
    observer: &mut dyn FitObserver,
) -> Result<History> {
    fit_from(model, train, eval, cfg, History::default(), observer)
}

/// Continues a run of which the epochs in `done` are finished (`model` restored from
/// their `TrainingState`). The finished epochs' shuffles are replayed from the seed and
/// the schedule continues from their step count, so the result equals the run's had it
/// never stopped.
pub fn fit_from(
    model: &mut dyn Classifier,
    train: &Dataset,
    eval: &Dataset,
    cfg: &FitConfig,
    done: History,
    observer: &mut dyn FitObserver,
) -> Result<History> {
    check_fit(train, eval, cfg, &done)?;
    let steps_per_epoch = train.len().div_ceil(cfg.batch);
    let total_steps = total_steps(cfg, steps_per_epoch)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut history = done;
    for epoch in 1..=cfg.epochs {
        order.shuffle(&mut rng);
        if epoch <= history.epochs.len() {
            continue;
        }
        observer.epoch_start(epoch, steps_per_epoch);
        let t0 = Instant::now();
        for (i, idx) in order.chunks(cfg.batch).enumerate() {
            let step = (epoch - 1) * steps_per_epoch + i;
            model.set_lr(cfg.schedule.lr_at(cfg.lr, step, total_steps));
            train_batch(model, train, idx)?;
            observer.step_end(i + 1);
        }
        let seconds = t0.elapsed().as_secs_f64();
        let s = model.take_running_stats()?;
        if !s.loss.is_finite() {
            return Err(LstmError::value(
                "training loss",
                format!(
                    "became {} in epoch {epoch}, so training stopped after epoch {}; lower the learning rate",
                    s.loss,
                    epoch - 1
                ),
            ));
        }
        let stats = EpochStats {
            epoch,
            train_loss: f64::from(s.loss),
            train_acc: f64::from(s.correct) / f64::from(s.count.max(1.0)),
            eval_acc: accuracy(&*model, eval)?,
            seconds,
        };
        observer.epoch_end(&stats);
        history.epochs.push(stats);
        observer.after_epoch(&*model, &history)?;
    }
    Ok(history)
}

fn check_fit(train: &Dataset, eval: &Dataset, cfg: &FitConfig, done: &History) -> Result<()> {
    if done.epochs.len() > cfg.epochs {
        return Err(LstmError::value(
            "epochs",
            format!(
                "{} epochs are already done, more than the {} asked for",
                done.epochs.len(),
                cfg.epochs
            ),
        ));
    }
    if cfg.batch == 0 {
        return Err(LstmError::Config(
            "the batch size must be at least 1".into(),
        ));
    }
    if train.is_empty() || eval.is_empty() {
        return Err(LstmError::value(
            "data set",
            "training and evaluation sets must not be empty",
        ));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(LstmError::value(
            "learning rate",
            format!("must be finite and positive, got {}", cfg.lr),
        ));
    }
    Ok(())
}

fn total_steps(cfg: &FitConfig, steps_per_epoch: usize) -> Result<usize> {
    Ok(cfg
        .epochs
        .checked_mul(steps_per_epoch)
        .ok_or_else(|| {
            LstmError::value(
                "epochs",
                format!(
                    "{} epochs of {steps_per_epoch} steps overflow a step count",
                    cfg.epochs
                ),
            )
        })?
        .max(1))
}

fn train_batch(model: &mut dyn Classifier, data: &Dataset, idx: &[usize]) -> Result<()> {
    let (x, y) = data.gather(idx)?;
    let batch = Batch {
        x: x.view(),
        targets: &y,
        seq_lens: None,
    };
    model.train_step(&batch, false)?;
    Ok(())
}

/// Fraction of `data` that `model` classifies correctly, in batches of 500.
pub fn accuracy(model: &dyn Classifier, data: &Dataset) -> Result<f64> {
    let mut correct = 0.0;
    let all: Vec<usize> = (0..data.len()).collect();
    for idx in all.chunks(500) {
        let (x, y) = data.gather(idx)?;
        let batch = Batch {
            x: x.view(),
            targets: &y,
            seq_lens: None,
        };
        correct += model.evaluate(&batch)?.correct as f64;
    }
    Ok(correct / data.len().max(1) as f64)
}

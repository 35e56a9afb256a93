//! Training the generator: Adam (the crate's optimizer step, `cpu::optimizer_update`,
//! with `train::TrainConfig`'s settings) over shuffled batches of teacher-forced digits,
//! a cosine learning-rate schedule, and a held-out loss per epoch.

use std::time::Instant;

use ndarray::{ArrayView3, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::model::{loss, loss_and_gradients, teacher_inputs, GenDevice};
use crate::cpu::optimizer_update;
use crate::error::{LstmError, Result};
use crate::train::classifier::{param_slices, standardize};
use crate::train::{ClassifierParams, LrSchedule, TrainConfig};

/// The loop's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GenTrainConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate of Adam.
    pub lr: f32,
    pub schedule: LrSchedule,
    /// Clip the gradient to this global L2 norm.
    pub clip: Option<f32>,
    /// Seeds the shuffling (and the binarisation).
    pub seed: u64,
    /// Feed the LSTM a freshly drawn binary version of each input row (pixel on with
    /// probability = its intensity; "dynamic binarisation") instead of the grey levels:
    /// the rows it is fed when drawing are then like those it was trained on. The
    /// targets stay the intensities (the expected cross-entropy over the draws).
    pub binarize_inputs: bool,
}

impl Default for GenTrainConfig {
    /// The `generate` command's defaults: about 2.5 minutes on a 2-core CPU with the
    /// default 256 units (see the README's "Generate and inspect digits").
    fn default() -> Self {
        GenTrainConfig {
            epochs: 20,
            batch: 64,
            lr: 4e-3,
            schedule: LrSchedule::Cosine,
            clip: Some(1.0),
            seed: 0,
            binarize_inputs: true,
        }
    }
}

/// One epoch's figures (losses are mean per-pixel cross-entropy, nats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenEpoch {
    pub epoch: usize,
    pub train_loss: f64,
    /// Teacher-forced loss on the held-out digits (NaN without any).
    pub eval_loss: f64,
    pub seconds: f64,
}

/// Progress callbacks; every method has an empty default.
pub trait GenObserver {
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    fn step_end(&mut self, _step: usize) {}
    fn epoch_end(&mut self, _epoch: &GenEpoch) {}
}

impl GenObserver for () {}

/// A generator and its Adam moments.
pub struct GenTrainer {
    params: ClassifierParams,
    cfg: TrainConfig,
    device: GenDevice,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: u64,
}

impl GenTrainer {
    pub fn new(mut params: ClassifierParams, cfg: TrainConfig, device: GenDevice) -> Result<Self> {
        params.validate()?;
        params.lstm.check_finite()?;
        standardize(&mut params);
        let sizes: Vec<usize> = param_slices(&mut params).iter().map(|s| s.len()).collect();
        Ok(GenTrainer {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            params,
            cfg,
            device,
            step: 0,
        })
    }

    /// One optimizer step on a teacher-forced batch; returns its loss.
    pub fn step(&mut self, x: ArrayView3<f32>, targets: ArrayView3<f32>) -> Result<f32> {
        let (loss, mut grads) = loss_and_gradients(&self.params, x, targets, &self.device)?;
        if !loss.is_finite() {
            return Err(LstmError::value(
                "generator loss",
                format!("{loss} (diverged)"),
            ));
        }
        standardize(&mut grads);
        self.step += 1;
        let rule = self.cfg.update_rule(self.step);
        let grads: Vec<Vec<f32>> = param_slices(&mut grads)
            .into_iter()
            .map(|s| s.to_vec())
            .collect();
        let grad_refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        optimizer_update(
            &mut param_slices(&mut self.params),
            &grad_refs,
            &mut self.m,
            &mut self.v,
            &rule,
        )?;
        Ok(loss)
    }

    pub fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    pub fn params(&self) -> &ClassifierParams {
        &self.params
    }

    pub fn into_params(self) -> ClassifierParams {
        self.params
    }
}

/// Digits `[N, 28, 28]` with their classes.
#[derive(Clone, Copy, Debug)]
pub struct Digits<'a> {
    pub images: ArrayView3<'a, f32>,
    pub labels: &'a [usize],
}

/// Trains `params` on `train` for `cfg.epochs` epochs; after each epoch the
/// teacher-forced loss on `eval` (if any). Returns the trained parameters and the
/// per-epoch figures.
pub fn train_generator(
    params: ClassifierParams,
    train: Digits,
    eval: Option<Digits>,
    cfg: &GenTrainConfig,
    device: GenDevice,
    obs: &mut dyn GenObserver,
) -> Result<(ClassifierParams, Vec<GenEpoch>)> {
    let n = train.images.dim().0;
    if n == 0 || cfg.batch == 0 || train.labels.len() != n {
        return Err(LstmError::value(
            "generator training",
            format!(
                "{n} images, {} labels, batch {}: need ≥ 1 image, one label each, batch ≥ 1",
                train.labels.len(),
                cfg.batch
            ),
        ));
    }
    let opt = TrainConfig {
        lr: cfg.lr,
        clip_norm: cfg.clip,
        ..Default::default()
    };
    let mut trainer = GenTrainer::new(params, opt, device)?;
    let steps = n.div_ceil(cfg.batch);
    let total = steps * cfg.epochs;
    let mut history = Vec::with_capacity(cfg.epochs);
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 1..=cfg.epochs {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64));
        order.shuffle(&mut rng);
        obs.epoch_start(epoch, steps);
        let start = Instant::now();
        let mut sum = 0.0f64;
        for (k, idx) in order.chunks(cfg.batch).enumerate() {
            trainer.set_lr(cfg.schedule.lr_at(cfg.lr, (epoch - 1) * steps + k, total));
            let images = train.images.select(Axis(0), idx);
            let labels: Vec<usize> = idx.iter().map(|&i| train.labels[i]).collect();
            let mut x = teacher_inputs(images.view(), &labels)?;
            if cfg.binarize_inputs {
                binarize_rows(&mut x, &mut rng);
            }
            sum += f64::from(trainer.step(x.view(), images.view())?) * idx.len() as f64;
            obs.step_end(k + 1);
        }
        let seconds = start.elapsed().as_secs_f64();
        let eval_loss = match eval {
            Some(d) => teacher_forced_loss(trainer.params(), d)?,
            None => f64::NAN,
        };
        let e = GenEpoch {
            epoch,
            train_loss: sum / n as f64,
            eval_loss,
            seconds,
        };
        obs.epoch_end(&e);
        history.push(e);
    }
    Ok((trainer.into_params(), history))
}

/// Replaces the image-row part of teacher-forced inputs by binary draws.
fn binarize_rows(x: &mut ndarray::Array3<f32>, rng: &mut ChaCha8Rng) {
    use rand::Rng;
    x.slice_mut(ndarray::s![.., .., ..super::model::COLS])
        .mapv_inplace(|v| f32::from(rng.random::<f32>() < v));
}

/// Mean per-pixel cross-entropy of teacher-forced predictions on `digits`.
pub fn teacher_forced_loss(params: &ClassifierParams, digits: Digits) -> Result<f64> {
    let n = digits.images.dim().0;
    let mut sum = 0.0f64;
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let images = digits.images.slice(ndarray::s![start..end, .., ..]);
        let x = teacher_inputs(images, &digits.labels[start..end])?;
        sum += f64::from(loss(params, x.view(), images)?) * (end - start) as f64;
    }
    Ok(sum / n.max(1) as f64)
}

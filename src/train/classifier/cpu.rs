//! The CPU backend of [`Classifier`]: the reference the GPU trainer is tested against.

use ndarray::{Array2, ArrayView3, Axis};

use super::flat::{flatten, param_slices, standardize, unflatten_into};
use super::head::{head_features, head_upstream};
use super::model::{
    check_denominator, rows_and_weights, Batch, Classifier, ClassifierParams, Dense,
    OptimizerState, StepStats,
};
use crate::cpu::{self, optimizer_update, softmax_xent, Upstream};
use crate::error::{LstmError, Result};
use crate::sequence::{ForwardOptions, LstmOutput};
use crate::train::optimizer::TrainConfig;

pub struct CpuClassifier {
    params: ClassifierParams,
    cfg: TrainConfig,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: u64,
    /// `(Σ loss·count, Σ correct, Σ count)` since the last `take_running_stats`.
    running: (f64, f64, f64),
    /// The last training forward's cache, kept so that the next one reuses its arrays.
    cache: cpu::ForwardCache,
}

impl CpuClassifier {
    pub fn new(mut params: ClassifierParams, cfg: TrainConfig) -> Result<Self> {
        params.validate()?;
        params.lstm.check_finite()?;
        params
            .lstm
            .layers
            .iter_mut()
            .for_each(super::model::fold_biases);
        standardize(&mut params);
        let sizes: Vec<usize> = param_slices(&mut params).iter().map(|s| s.len()).collect();
        Ok(CpuClassifier {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            params,
            cfg,
            step: 0,
            running: (0.0, 0.0, 0.0),
            cache: cpu::ForwardCache::default(),
        })
    }

    /// The LSTM's output, the head's features and the logits; with `cache`, a training
    /// forward that fills it.
    fn forward(
        &self,
        x: ArrayView3<f32>,
        seq_lens: Option<&[usize]>,
        cache: Option<&mut cpu::ForwardCache>,
    ) -> Result<(LstmOutput, Array2<f32>, Array2<f32>)> {
        let opts = ForwardOptions {
            initial: None,
            seq_lens,
        };
        let out = match cache {
            Some(c) => cpu::forward_train_into(&self.params.lstm, x, opts, c)?,
            None => cpu::forward(&self.params.lstm, x, opts)?,
        };
        let feat = head_features(&self.params.lstm.config, self.cfg.target, &out.y, &out.h_n);
        let logits = feat.dot(&self.params.dense.weight.t()) + &self.params.dense.bias;
        Ok((out, feat, logits))
    }

    /// The loss's gradient (scaled by `1/denominator`, or by 1/the batch's row count)
    /// and the batch's figures.
    fn loss(
        &self,
        batch: &Batch,
        logits: &Array2<f32>,
        denominator: Option<f32>,
    ) -> Result<(Array2<f32>, StepStats)> {
        let (labels, weights) = rows_and_weights(
            &self.params.lstm.config,
            self.cfg.target,
            batch.x.dim(),
            batch.targets,
            batch.seq_lens,
            self.params.dense.classes(),
        )?;
        let count: f32 = weights.iter().sum();
        let scale = 1.0 / denominator.unwrap_or(count);
        let (d, stats) = softmax_xent(logits.view(), &labels, &weights, scale)?;
        let loss = stats.iter().map(|s| s[0] as f64).sum::<f64>() / count as f64;
        let correct = stats.iter().map(|s| s[1]).sum();
        Ok((
            d,
            StepStats {
                loss: loss as f32,
                correct,
                count,
            },
        ))
    }
}

impl CpuClassifier {
    /// Forward and backward: the gradient of every trained tensor (laid out like the
    /// parameters; the loss scaled by `1/denominator`, by default 1/the row count) and
    /// the batch's figures, which join the running totals.
    fn backprop(
        &mut self,
        batch: &Batch,
        denominator: Option<f32>,
    ) -> Result<(ClassifierParams, StepStats)> {
        let mut cache = std::mem::take(&mut self.cache);
        let (out, feat, logits) = self.forward(batch.x, batch.seq_lens, Some(&mut cache))?;
        let (dlogits, stats) = self.loss(batch, &logits, denominator)?;
        let dense = Dense {
            weight: dlogits.t().dot(&feat),
            bias: dlogits.sum_axis(Axis(0)),
        };
        let dfeat = dlogits.dot(&self.params.dense.weight);
        let (dh_n, dy) = head_upstream(
            &self.params.lstm.config,
            self.cfg.target,
            dfeat,
            out.y.dim(),
            out.h_n.dim(),
        );
        let up = Upstream {
            dy: dy.as_ref().map(|a| a.view()),
            dh_n: Some(dh_n.view()),
            dc_n: None,
        };
        let g = cpu::backward_without_dx(&self.params.lstm, &cache, up)?;
        self.cache = cache;
        let grads = ClassifierParams {
            lstm: g.params,
            dense,
        };
        self.running.0 += f64::from(stats.loss * stats.count);
        self.running.1 += f64::from(stats.correct);
        self.running.2 += f64::from(stats.count);
        Ok((grads, stats))
    }

    /// One optimizer step with `grads` (laid out like the parameters).
    fn update(&mut self, mut grads: ClassifierParams) -> Result<()> {
        self.step += 1;
        let rule = self.cfg.update_rule(self.step);
        let grads: Vec<Vec<f32>> = param_slices(&mut grads)
            .into_iter()
            .map(|s| s.to_vec())
            .collect();
        let grad_refs: Vec<&[f32]> = grads.iter().map(|g| g.as_slice()).collect();
        optimizer_update(
            &mut param_slices(&mut self.params),
            &grad_refs,
            &mut self.m,
            &mut self.v,
            &rule,
        )
    }
}

impl Classifier for CpuClassifier {
    fn train_step(&mut self, batch: &Batch, want_stats: bool) -> Result<Option<StepStats>> {
        let (grads, stats) = self.backprop(batch, None)?;
        self.update(grads)?;
        Ok(want_stats.then_some(stats))
    }

    fn gradients(
        &mut self,
        batch: &Batch,
        denominator: f32,
        want_stats: bool,
    ) -> Result<(Vec<f32>, Option<StepStats>)> {
        check_denominator(denominator)?;
        let (grads, stats) = self.backprop(batch, Some(denominator))?;
        Ok((flatten(&grads), want_stats.then_some(stats)))
    }

    fn apply_gradients(&mut self, grads: &[f32]) -> Result<()> {
        let mut g = self.params.clone();
        unflatten_into(&mut g, grads)?;
        self.update(g)
    }

    fn take_running_stats(&mut self) -> Result<StepStats> {
        let (loss, correct, count) = std::mem::take(&mut self.running);
        Ok(StepStats {
            loss: if count > 0.0 {
                (loss / count) as f32
            } else {
                0.0
            },
            correct: correct as f32,
            count: count as f32,
        })
    }

    fn evaluate(&self, batch: &Batch) -> Result<StepStats> {
        let (_, _, logits) = self.forward(batch.x, batch.seq_lens, None)?;
        Ok(self.loss(batch, &logits, None)?.1)
    }

    fn logits(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Array2<f32>> {
        Ok(self.forward(x, seq_lens, None)?.2)
    }

    fn params(&self) -> Result<ClassifierParams> {
        Ok(self.params.clone())
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    fn device_name(&self) -> String {
        "CPU (reference path)".into()
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        let moment = |flat: &[Vec<f32>]| {
            let mut p = self.params.clone();
            for (dst, src) in param_slices(&mut p).into_iter().zip(flat) {
                dst.copy_from_slice(src);
            }
            p
        };
        Ok(OptimizerState {
            step: self.step,
            m: moment(&self.m),
            v: moment(&self.v),
        })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        let flat = |p: &ClassifierParams| -> Result<Vec<Vec<f32>>> {
            p.validate()?;
            let mut p = p.clone();
            let mut want = self.params.lstm.config.clone();
            want.batch_first = p.lstm.config.batch_first;
            if p.lstm.config != want || p.dense.weight.dim() != self.params.dense.weight.dim() {
                return Err(LstmError::shape(
                    "optimizer state",
                    format!("moments shaped like {:?}", self.params.lstm.config),
                    format!("{:?}", p.lstm.config),
                ));
            }
            p.lstm.layers.iter_mut().for_each(super::model::fold_biases);
            standardize(&mut p);
            Ok(param_slices(&mut p).iter().map(|s| s.to_vec()).collect())
        };
        let (m, v) = (flat(&state.m)?, flat(&state.v)?);
        (self.m, self.v, self.step) = (m, v, state.step);
        Ok(())
    }
}

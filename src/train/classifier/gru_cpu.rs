//! [`GruClassifier`]: GRU → Dense → softmax cross-entropy on the CPU path, the seed's
//! classifier with the LSTM's sibling (`lstm-wgpu train --cell gru`). The head, the loss
//! and the optimizer are the LSTM classifier's (`head.rs`, `cpu::softmax_xent`,
//! `cpu::optimizer_update`); the recurrent part is `cpu::gru_forward_train` and
//! `cpu::gru_backward`. Both GRU biases are trained (`b_hn` sits inside the reset gate,
//! so unlike the LSTM's they cannot be folded into one).

use ndarray::{Array2, ArrayView3, Axis};

use super::head::{head_features, head_upstream};
use super::model::{
    rows_and_weights, Batch, Classifier, ClassifierParams, Dense, GruClassifierParams,
    OptimizerState, StepStats,
};
use crate::cpu::{self, optimizer_update, softmax_xent, GruCache, GruUpstream};
use crate::error::{LstmError, Result};
use crate::gru::{GruOptions, GruOutput};
use crate::train::optimizer::TrainConfig;

/// Checks a GRU classifier's shapes (the Dense layer reads what the GRU gives it) and
/// that its weights are finite.
pub(super) fn check_params(params: &GruClassifierParams) -> Result<()> {
    params.gru.validate()?;
    params.gru.check_finite()?;
    let f = params.gru.config.output_size();
    let (c, fd) = params.dense.weight.dim();
    if fd != f || params.dense.bias.len() != c || c == 0 {
        return Err(LstmError::shape(
            "fc.weight / fc.bias",
            format!("[C, {f}] / [C]"),
            format!(
                "{:?} / {:?}",
                params.dense.weight.shape(),
                params.dense.bias.shape()
            ),
        ));
    }
    Ok(())
}

/// A forward's output, its cache (training), the Dense head's input rows and the logits.
type Forward = (GruOutput, Option<GruCache>, Array2<f32>, Array2<f32>);

pub struct GruClassifier {
    params: GruClassifierParams,
    cfg: TrainConfig,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: u64,
    /// `(Σ loss·count, Σ correct, Σ count)` since the last `take_running_stats`.
    running: (f64, f64, f64),
}

impl GruClassifier {
    pub fn new(params: GruClassifierParams, cfg: TrainConfig) -> Result<Self> {
        check_params(&params)?;
        let mut params = params;
        Self::standardize(&mut params);
        let sizes: Vec<usize> = params.slices().iter().map(|s| s.len()).collect();
        Ok(GruClassifier {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            params,
            cfg,
            step: 0,
            running: (0.0, 0.0, 0.0),
        })
    }

    /// The current parameters, borrowed (`Classifier::gru_params` returns a copy).
    pub fn params_ref(&self) -> &GruClassifierParams {
        &self.params
    }

    /// Every tensor row-major: the optimizer works on each as one slice.
    fn standardize(params: &mut GruClassifierParams) {
        fn standard<D: ndarray::Dimension>(a: &mut ndarray::Array<f32, D>) {
            if !a.is_standard_layout() {
                *a = a.as_standard_layout().into_owned();
            }
        }
        for l in params.gru.layers.iter_mut() {
            standard(&mut l.w_ih);
            standard(&mut l.w_hh);
            l.b_ih
                .iter_mut()
                .chain(l.b_hh.iter_mut())
                .for_each(standard);
        }
        standard(&mut params.dense.weight);
        standard(&mut params.dense.bias);
    }

    fn forward(
        &self,
        x: ArrayView3<f32>,
        seq_lens: Option<&[usize]>,
        train: bool,
    ) -> Result<Forward> {
        let opts = GruOptions {
            initial: None,
            seq_lens,
        };
        let (out, cache) = if train {
            let (o, c) = cpu::gru_forward_train(&self.params.gru, x, opts)?;
            (o, Some(c))
        } else {
            (cpu::gru_forward(&self.params.gru, x, opts)?, None)
        };
        let feat = head_features(
            &self.params.gru.config.layout(),
            self.cfg.target,
            &out.y,
            &out.h_n,
        );
        let logits = feat.dot(&self.params.dense.weight.t()) + &self.params.dense.bias;
        Ok((out, cache, feat, logits))
    }

    /// The loss's gradient by the logits (mean over counted rows) and the batch's figures.
    fn loss(&self, batch: &Batch, logits: &Array2<f32>) -> Result<(Array2<f32>, StepStats)> {
        let (labels, weights) = rows_and_weights(
            &self.params.gru.config.layout(),
            self.cfg.target,
            batch.x.dim(),
            batch.targets,
            batch.seq_lens,
            self.params.dense.classes(),
        )?;
        let count: f32 = weights.iter().sum();
        let (d, stats) = softmax_xent(logits.view(), &labels, &weights, 1.0 / count)?;
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

    /// Forward, backward: the gradients laid out like the parameters.
    fn backprop(&mut self, batch: &Batch) -> Result<(GruClassifierParams, StepStats)> {
        let (out, cache, feat, logits) = self.forward(batch.x, batch.seq_lens, true)?;
        let (dlogits, stats) = self.loss(batch, &logits)?;
        let dense = Dense {
            weight: dlogits.t().dot(&feat),
            bias: dlogits.sum_axis(Axis(0)),
        };
        let dfeat = dlogits.dot(&self.params.dense.weight);
        let layout = self.params.gru.config.layout();
        let (dh_n, dy) = head_upstream(&layout, self.cfg.target, dfeat, out.y.dim(), out.h_n.dim());
        let cache = cache.ok_or_else(|| LstmError::value("forward cache", "missing"))?;
        let up = GruUpstream {
            dy: dy.as_ref().map(|a| a.view()),
            dh_n: Some(dh_n.view()),
        };
        let g = cpu::gru_backward(&self.params.gru, &cache, up)?;
        self.running.0 += f64::from(stats.loss * stats.count);
        self.running.1 += f64::from(stats.correct);
        self.running.2 += f64::from(stats.count);
        Ok((
            GruClassifierParams {
                gru: g.params,
                dense,
            },
            stats,
        ))
    }
}

impl GruClassifier {
    /// `moments` (one vector per tensor) laid out like the parameters.
    fn like_params(&self, moments: &[Vec<f32>]) -> GruClassifierParams {
        let mut out = self.params.clone();
        for (dst, src) in out.slices().into_iter().zip(moments) {
            dst.copy_from_slice(src);
        }
        out
    }
}

/// `p`'s tensors as vectors, checked against `like` (same config and sizes).
fn moments_of(p: &GruClassifierParams, like: &GruClassifierParams) -> Result<Vec<Vec<f32>>> {
    let mut p = p.clone();
    let mut want = like.gru.config.clone();
    want.batch_first = p.gru.config.batch_first;
    let same_shapes = p.gru.config == want
        && p.dense.weight.dim() == like.dense.weight.dim()
        && p.dense.bias.len() == like.dense.bias.len();
    if !same_shapes || p.gru.validate().is_err() {
        return Err(LstmError::shape(
            "GRU optimizer state",
            format!(
                "{:?} with {} classes",
                like.gru.config,
                like.dense.classes()
            ),
            format!("{:?} with {} classes", p.gru.config, p.dense.classes()),
        ));
    }
    GruClassifier::standardize(&mut p);
    Ok(p.slices().into_iter().map(|s| s.to_vec()).collect())
}

fn not_an_lstm(what: &str) -> LstmError {
    LstmError::Config(format!(
        "a GRU classifier has no LSTM {what}: read Classifier::gru_params"
    ))
}

impl Classifier for GruClassifier {
    fn train_step(&mut self, batch: &Batch, want_stats: bool) -> Result<Option<StepStats>> {
        let (mut grads, stats) = self.backprop(batch)?;
        self.step += 1;
        let rule = self.cfg.update_rule(self.step);
        let grads: Vec<Vec<f32>> = grads.slices().into_iter().map(|s| s.to_vec()).collect();
        let grad_refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        optimizer_update(
            &mut self.params.slices(),
            &grad_refs,
            &mut self.m,
            &mut self.v,
            &rule,
        )?;
        Ok(want_stats.then_some(stats))
    }

    fn take_running_stats(&mut self) -> Result<StepStats> {
        let (loss, correct, count) = std::mem::take(&mut self.running);
        let loss = if count > 0.0 {
            (loss / count) as f32
        } else {
            0.0
        };
        Ok(StepStats {
            loss,
            correct: correct as f32,
            count: count as f32,
        })
    }

    fn evaluate(&self, batch: &Batch) -> Result<StepStats> {
        let (_, _, _, logits) = self.forward(batch.x, batch.seq_lens, false)?;
        Ok(self.loss(batch, &logits)?.1)
    }

    fn logits(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Array2<f32>> {
        Ok(self.forward(x, seq_lens, false)?.3)
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    fn params(&self) -> Result<ClassifierParams> {
        Err(not_an_lstm("parameters"))
    }

    fn device_name(&self) -> String {
        "CPU (reference path)".into()
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        Err(not_an_lstm("optimizer state"))
    }

    fn set_optimizer_state(&mut self, _: &OptimizerState) -> Result<()> {
        Err(not_an_lstm("optimizer state"))
    }

    fn gru_params(&self) -> Result<GruClassifierParams> {
        Ok(self.params.clone())
    }

    fn gru_optimizer_state(&self) -> Result<OptimizerState<GruClassifierParams>> {
        Ok(OptimizerState {
            step: self.step,
            m: self.like_params(&self.m),
            v: self.like_params(&self.v),
        })
    }

    fn set_gru_optimizer_state(
        &mut self,
        state: &OptimizerState<GruClassifierParams>,
    ) -> Result<()> {
        let m = moments_of(&state.m, &self.params)?;
        let v = moments_of(&state.v, &self.params)?;
        (self.m, self.v, self.step) = (m, v, state.step);
        Ok(())
    }
}

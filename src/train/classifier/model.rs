//! What the classifier is: parameters, batches, statistics, and the trait both
//! backends implement.

use ndarray::{Array1, Array2, ArrayView3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{LstmError, Result};
use crate::gru::GruWeights;
use crate::train::init::Init;
use crate::train::optimizer::Target;
use crate::weights::LstmWeights;

/// A fully connected layer in `torch.nn.Linear`'s layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[C, F]`.
    pub weight: Array2<f32>,
    /// `[C]`.
    pub bias: Array1<f32>,
}

impl Dense {
    /// PyTorch's `nn.Linear` initialisation: U(-1/√F, 1/√F), seeded.
    pub fn init(features: usize, classes: usize, seed: u64) -> Result<Self> {
        if features == 0 || classes == 0 {
            return Err(LstmError::Config(format!(
                "Dense needs features ≥ 1 and classes ≥ 1, got {features} and {classes}"
            )));
        }
        if classes
            .checked_mul(features)
            .is_none_or(|n| n > (isize::MAX as usize) / 4)
        {
            return Err(LstmError::Config(format!(
                "Dense of {classes} classes × {features} features is too large to allocate"
            )));
        }
        let k = 1.0 / (features as f32).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(Dense {
            weight: Array2::from_shape_simple_fn((classes, features), || rng.random_range(-k..k)),
            bias: Array1::from_shape_simple_fn(classes, || rng.random_range(-k..k)),
        })
    }

    pub fn classes(&self) -> usize {
        self.weight.nrows()
    }
}

/// Everything a classifier learns.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierParams {
    pub lstm: LstmWeights,
    pub dense: Dense,
}

impl ClassifierParams {
    /// Seeded PyTorch-style initialisation; `forget_bias` is added to the forget gate's
    /// bias (Jozefowicz et al. 2015; Keras's `unit_forget_bias`).
    pub fn init(
        lstm: &crate::config::LstmConfig,
        classes: usize,
        forget_bias: f32,
        seed: u64,
    ) -> Result<Self> {
        Self::init_with(Init::Torch, lstm, classes, forget_bias, seed)
    }

    /// Initialisation with a chosen scheme for the LSTM; the Dense layer is PyTorch's.
    pub fn init_with(
        scheme: Init,
        lstm: &crate::config::LstmConfig,
        classes: usize,
        forget_bias: f32,
        seed: u64,
    ) -> Result<Self> {
        let mut w = scheme.weights(lstm, seed)?;
        let h = lstm.hidden_size;
        for l in &mut w.layers {
            fold_biases(l);
            if let Some(b) = l.b_ih.as_mut() {
                b.slice_mut(ndarray::s![h..2 * h])
                    .mapv_inplace(|v| v + forget_bias);
            }
        }
        let dense = Dense::init(lstm.output_size(), classes, seed.wrapping_add(1))?;
        Ok(ClassifierParams { lstm: w, dense })
    }

    /// Checks shapes: the Dense layer must read what the LSTM gives it.
    pub fn validate(&self) -> Result<()> {
        self.lstm.validate()?;
        let f = self.lstm.config.output_size();
        let (c, fd) = self.dense.weight.dim();
        if fd != f || self.dense.bias.len() != c || c == 0 {
            return Err(LstmError::shape(
                "fc.weight / fc.bias",
                format!("[C, {f}] / [C]"),
                format!(
                    "{:?} / {:?}",
                    self.dense.weight.shape(),
                    self.dense.bias.shape()
                ),
            ));
        }
        Ok(())
    }
}

/// A GRU classifier's parameters (PyTorch's names on save: `gru.*`, `fc.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct GruClassifierParams {
    pub gru: GruWeights,
    pub dense: Dense,
}

impl GruClassifierParams {
    /// A fresh model: the GRU by `scheme`, the Dense layer PyTorch's `nn.Linear`.
    pub fn init(
        scheme: crate::train::init::Init,
        gru: &crate::gru::GruConfig,
        classes: usize,
        seed: u64,
    ) -> Result<Self> {
        Ok(GruClassifierParams {
            gru: scheme.gru_weights(gru, seed)?,
            dense: Dense::init(gru.output_size(), classes, seed.wrapping_add(1))?,
        })
    }

    /// Every trained tensor in a fixed order: per layer-direction `w_ih`, `w_hh`,
    /// `b_ih`, `b_hh`; then the Dense weight and bias.
    pub(super) fn slices(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = Vec::new();
        for l in self.gru.layers.iter_mut() {
            out.push(l.w_ih.as_slice_mut().expect("standard layout"));
            out.push(l.w_hh.as_slice_mut().expect("standard layout"));
            for b in [&mut l.b_ih, &mut l.b_hh].into_iter().flatten() {
                out.push(b.as_slice_mut().expect("standard layout"));
            }
        }
        out.push(self.dense.weight.as_slice_mut().expect("standard layout"));
        out.push(self.dense.bias.as_slice_mut().expect("standard layout"));
        out
    }
}

/// Moves `b_hh` into `b_ih` (their sum is all the forward uses) so training has one bias.
pub(crate) fn fold_biases(l: &mut crate::weights::LayerWeights) {
    if let (Some(bi), Some(bh)) = (l.b_ih.as_mut(), l.b_hh.as_mut()) {
        *bi += &*bh;
        bh.fill(0.0);
    }
}

/// One batch. `targets` has one label per sequence ([`Target::LastStep`]) or one per
/// time step in `x`'s own `[T, B]` / `[B, T]` order ([`Target::EveryStep`]).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub x: ArrayView3<'a, f32>,
    pub targets: &'a [usize],
    pub seq_lens: Option<&'a [usize]>,
}

/// Loss and accuracy of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy over counted rows.
    pub loss: f32,
    /// Rows whose argmax is the label.
    pub correct: f32,
    /// Rows counted (B, or the valid steps for many-to-many).
    pub count: f32,
}

/// What the optimizer carries between steps: its step count and, per trained tensor,
/// its moments (Adam's `exp_avg` / `exp_avg_sq`; SGD's momentum in `m`), held in the
/// parameters' own host layout so a state saved on one device resumes on the other.
/// `P` is the model's parameter type: [`ClassifierParams`] for an LSTM classifier,
/// [`GruClassifierParams`] for a GRU one.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<P = ClassifierParams> {
    /// Steps taken so far (the next step is `step + 1`).
    pub step: u64,
    pub m: P,
    pub v: P,
}

/// A trainable sequence classifier; the GPU and CPU backends implement it.
pub trait Classifier {
    /// Forward, backward and one optimizer step; returns the batch's loss only if asked
    /// (on the GPU that costs a readback). Every step also adds its loss and accuracy to
    /// running totals (on the GPU, kept there).
    fn train_step(&mut self, batch: &Batch, want_stats: bool) -> Result<Option<StepStats>>;
    /// Loss (mean) and accuracy of every training step since the last call, then zeroed:
    /// an epoch's figures with one readback instead of one per step.
    fn take_running_stats(&mut self) -> Result<StepStats>;
    /// Loss and accuracy without updating anything.
    fn evaluate(&self, batch: &Batch) -> Result<StepStats>;
    /// Logits `[B, C]` (last step) or `[rows, C]` with rows in time-major order (every step).
    fn logits(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Array2<f32>>;
    /// Changes the learning rate from the next step on (schedules).
    fn set_lr(&mut self, lr: f32);
    /// The current parameters (a readback on the GPU).
    fn params(&self) -> Result<ClassifierParams>;
    /// "GPU (adapter)" or "CPU".
    fn device_name(&self) -> String;
    /// The optimizer's state (a readback on the GPU), for checkpoints that resume.
    fn optimizer_state(&self) -> Result<OptimizerState>;
    /// Restores a state from [`Classifier::optimizer_state`] of a model of the same shape.
    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()>;

    /// A GRU model's parameters (a readback on the GPU); an LSTM model has none (its
    /// are [`params`](Self::params)).
    fn gru_params(&self) -> Result<GruClassifierParams> {
        Err(not_a_gru(&self.device_name()))
    }
    /// A GRU model's optimizer state, its moments laid out like its parameters.
    fn gru_optimizer_state(&self) -> Result<OptimizerState<GruClassifierParams>> {
        Err(not_a_gru(&self.device_name()))
    }
    /// Restores a state from [`gru_optimizer_state`](Self::gru_optimizer_state).
    fn set_gru_optimizer_state(
        &mut self,
        _state: &OptimizerState<GruClassifierParams>,
    ) -> Result<()> {
        Err(not_a_gru(&self.device_name()))
    }

    /// The first half of [`train_step`](Self::train_step), for data-parallel training:
    /// forward and backward without an update. Returns the gradient of
    /// `Σ_rows loss / denominator` for every trained tensor, flattened in the order of
    /// [`flatten`](super::flatten) (the same on every device), so that shards of a global
    /// batch, each given the global row count, sum to the global batch's mean gradient.
    /// The batch's loss and accuracy join the running totals as in `train_step`.
    fn gradients(
        &mut self,
        _batch: &Batch,
        _denominator: f32,
        _want_stats: bool,
    ) -> Result<(Vec<f32>, Option<StepStats>)> {
        Err(split_unsupported(&self.device_name()))
    }

    /// The second half: one optimizer step (clipping included) with `grads` laid out as
    /// [`gradients`](Self::gradients) returns them, e.g. summed over ranks.
    fn apply_gradients(&mut self, _grads: &[f32]) -> Result<()> {
        Err(split_unsupported(&self.device_name()))
    }
}

fn not_a_gru(name: &str) -> LstmError {
    LstmError::Config(format!(
        "the classifier on {name} is not a GRU classifier: read its parameters with `params`"
    ))
}

fn split_unsupported(name: &str) -> LstmError {
    LstmError::Config(format!(
        "the classifier on {name} trains only in whole steps (no gradients / apply_gradients)"
    ))
}

/// A loss denominator must be a positive finite row count.
pub(crate) fn check_denominator(denominator: f32) -> Result<()> {
    if denominator.is_finite() && denominator > 0.0 {
        Ok(())
    } else {
        Err(LstmError::value(
            "loss denominator",
            format!("must be finite and positive, got {denominator}"),
        ))
    }
}

/// Per-row labels and weights in time-major row order, checked against the batch.
/// Rows past a sequence's length get weight 0 (many-to-many).
pub(crate) fn rows_and_weights(
    cfg: &crate::config::LstmConfig,
    target: Target,
    x_dim: (usize, usize, usize),
    targets: &[usize],
    seq_lens: Option<&[usize]>,
    classes: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let (d0, d1, _) = x_dim;
    let (t, b) = if cfg.batch_first { (d1, d0) } else { (d0, d1) };
    let want = match target {
        Target::LastStep => b,
        Target::EveryStep => t * b,
    };
    if targets.len() != want {
        return Err(LstmError::shape(
            "targets",
            format!("{want} labels ({target:?})"),
            targets.len().to_string(),
        ));
    }
    if let Some((i, &c)) = targets.iter().enumerate().find(|(_, &c)| c >= classes) {
        return Err(LstmError::value(
            format!("targets[{i}]"),
            format!("label {c} is not below the {classes} classes"),
        ));
    }
    match target {
        Target::LastStep => Ok((targets.iter().map(|&c| c as u32).collect(), vec![1.0; b])),
        Target::EveryStep => {
            let mut labels = Vec::with_capacity(want);
            let mut weights = Vec::with_capacity(want);
            for ti in 0..t {
                for bi in 0..b {
                    let k = if cfg.batch_first {
                        bi * t + ti
                    } else {
                        ti * b + bi
                    };
                    labels.push(targets[k] as u32);
                    let live = seq_lens.is_none_or(|l| bi < l.len() && ti < l[bi]);
                    weights.push(if live { 1.0 } else { 0.0 });
                }
            }
            Ok((labels, weights))
        }
    }
}

//! The generative model: an LSTM whose output at every step goes through one Dense
//! layer to the logits of the next image row's pixels, trained with per-pixel sigmoid
//! (Bernoulli) cross-entropy. Its parameters are a [`ClassifierParams`] (an LSTM and a
//! Dense layer, `torch.nn.Linear` layout), so `train::save_checkpoint` and
//! `train::load_checkpoint` store it with PyTorch's names.
//!
//! The loss and gradient functions are shape-generic (any input width, hidden size and
//! head width), so the finite-difference test runs them on a tiny model; only
//! [`teacher_inputs`] knows about 28 × 28 digits and 10 classes.

use std::sync::Arc;

use ndarray::{s, Array1, Array2, Array3, ArrayView3, Axis};

use crate::config::LstmConfig;
use crate::cpu::{self, Upstream};
use crate::error::{LstmError, Result};
use crate::gpu::{GpuContext, GpuLstm};
use crate::sequence::ForwardOptions;
use crate::train::{ClassifierParams, Dense, Init};

/// Rows of a digit: one per time step.
pub const ROWS: usize = 28;
/// Pixels per row: the head's width.
pub const COLS: usize = 28;
/// Classes the generator is conditioned on.
pub const CLASSES: usize = 10;
/// Input width of a step: the previous row and the one-hot class.
pub const INPUT: usize = COLS + CLASSES;

/// Where the LSTM's forward and backward run while training (the head, the loss and
/// Adam are small and stay on the host).
#[derive(Clone)]
pub enum GenDevice {
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl GenDevice {
    pub fn name(&self) -> String {
        match self {
            GenDevice::Cpu => "CPU (reference path)".into(),
            GenDevice::Gpu(ctx) => format!("GPU ({})", ctx.describe()),
        }
    }
}

/// The LSTM of a generator with `hidden` units: batch-first `[B, 28, 38]` inputs.
pub fn generator_config(hidden: usize) -> LstmConfig {
    LstmConfig::new(INPUT, hidden).batch_first(true)
}

/// Seeded initial parameters: Keras initialisation and forget-gate bias 1 (the
/// classifier's defaults), a PyTorch-initialised head of [`COLS`] outputs.
pub fn init_generator(hidden: usize, seed: u64) -> Result<ClassifierParams> {
    ClassifierParams::init_with(Init::Keras, &generator_config(hidden), COLS, 1.0, seed)
}

/// Teacher-forced inputs `[N, 28, 38]` for images `[N, 28, 28]` and their classes: step
/// `t` sees row `t − 1` (zeros at `t = 0`) and the one-hot class, and must predict row `t`.
pub fn teacher_inputs(images: ArrayView3<f32>, classes: &[usize]) -> Result<Array3<f32>> {
    let (n, rows, cols) = images.dim();
    if cols != COLS || rows == 0 || rows > ROWS {
        return Err(LstmError::shape(
            "generator images [N, rows, 28]",
            "[N, 1..=28, 28]",
            format!("{:?}", images.shape()),
        ));
    }
    check_classes(classes, n)?;
    let mut x = Array3::<f32>::zeros((n, rows, INPUT));
    for (i, &c) in classes.iter().enumerate() {
        x.slice_mut(s![i, 1.., ..COLS])
            .assign(&images.slice(s![i, ..rows - 1, ..]));
        x.slice_mut(s![i, .., COLS + c]).fill(1.0);
    }
    Ok(x)
}

/// One class label per image, each below [`CLASSES`].
pub(crate) fn check_classes(classes: &[usize], n: usize) -> Result<()> {
    if classes.len() != n {
        return Err(LstmError::shape(
            "classes",
            format!("{n} (one per image)"),
            classes.len().to_string(),
        ));
    }
    if let Some((i, &c)) = classes.iter().enumerate().find(|(_, &c)| c >= CLASSES) {
        return Err(LstmError::value(
            format!("classes[{i}]"),
            format!("{c} is not a digit class 0–9"),
        ));
    }
    Ok(())
}

/// The head at every step: `y [B, T, H]` → logits `[B, T, C]`.
pub fn head(dense: &Dense, y: ArrayView3<f32>) -> Array3<f32> {
    let (b, t, h) = y.dim();
    let flat = y
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * t, h))
        .expect("standard layout");
    let logits = flat.dot(&dense.weight.t()) + &dense.bias;
    logits
        .into_shape_with_order((b, t, dense.classes()))
        .expect("b·t rows")
}

/// Numerically stable `softplus(z) − t·z`: the cross-entropy of a sigmoid output
/// `σ(z)` against a target intensity `t ∈ [0, 1]` (in nats).
pub fn bce_with_logit(z: f32, t: f32) -> f32 {
    z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
}

/// Mean per-pixel cross-entropy of `logits` against `targets` (same shape), and its
/// gradient with respect to the logits, `(σ(z) − t) / N`.
pub fn bce_loss(logits: ArrayView3<f32>, targets: ArrayView3<f32>) -> Result<(f32, Array3<f32>)> {
    if logits.shape() != targets.shape() {
        return Err(LstmError::shape(
            "generator targets",
            format!("{:?} (the logits' shape)", logits.shape()),
            format!("{:?}", targets.shape()),
        ));
    }
    if let Some(t) = targets.iter().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(LstmError::value(
            "generator targets",
            format!("{t} is not an intensity in [0, 1]"),
        ));
    }
    let n = logits.len().max(1) as f32;
    let mut total = 0.0f64;
    let mut grad = Array3::<f32>::zeros(logits.raw_dim());
    ndarray::Zip::from(&mut grad)
        .and(&logits)
        .and(&targets)
        .for_each(|g, &z, &t| {
            total += f64::from(bce_with_logit(z, t));
            *g = (cpu::sigmoid(z) - t) / n;
        });
    Ok(((total / f64::from(n)) as f32, grad))
}

/// Mean per-pixel cross-entropy of teacher-forced predictions, without gradients.
pub fn loss(
    params: &ClassifierParams,
    x: ArrayView3<f32>,
    targets: ArrayView3<f32>,
) -> Result<f32> {
    params.validate()?;
    let out = cpu::forward(&params.lstm, x, ForwardOptions::default())?;
    let logits = head(&params.dense, out.y.view());
    Ok(bce_loss(logits.view(), targets)?.0)
}

/// The mean per-pixel cross-entropy of a batch and its gradient with respect to every
/// parameter (same layout as `params`). The head's gradient is `dW = dZᵀ·Y`, `db = Σ dZ`;
/// `dY = dZ·W` at every step is the LSTM's upstream `∂L/∂y` for BPTT (this crate's
/// backward, on `device`).
pub fn loss_and_gradients(
    params: &ClassifierParams,
    x: ArrayView3<f32>,
    targets: ArrayView3<f32>,
    device: &GenDevice,
) -> Result<(f32, ClassifierParams)> {
    params.validate()?;
    if !params.lstm.config.batch_first {
        return Err(LstmError::Config(
            "the generator's LSTM must be batch-first ([B, T, I])".into(),
        ));
    }
    let opts = ForwardOptions::default();
    let (lstm_grads, (loss, dense)) = match device {
        GenDevice::Cpu => {
            let (out, cache) = cpu::forward_train(&params.lstm, x, opts)?;
            let (loss, dy, dense) = head_backward(params, out.y.view(), targets)?;
            let up = Upstream {
                dy: Some(dy.view()),
                ..Default::default()
            };
            (cpu::backward(&params.lstm, &cache, up)?, (loss, dense))
        }
        GenDevice::Gpu(ctx) => {
            // forward_backward takes ∂L/∂y up front, and ∂L/∂y needs y: one forward
            // for y, then the forward again with the backward in the same submit.
            let lstm = GpuLstm::new(ctx.clone(), &params.lstm)?;
            let y = lstm.forward(x, opts)?.y;
            let (loss, dy, dense) = head_backward(params, y.view(), targets)?;
            let up = Upstream {
                dy: Some(dy.view()),
                ..Default::default()
            };
            (lstm.forward_backward(x, opts, up)?.1, (loss, dense))
        }
    };
    let grads = ClassifierParams {
        lstm: lstm_grads.params,
        dense,
    };
    Ok((loss, grads))
}

/// The head's forward and backward from the LSTM output `y [B, T, H]`: the loss,
/// `∂L/∂y` and the head's gradients.
fn head_backward(
    params: &ClassifierParams,
    y: ArrayView3<f32>,
    targets: ArrayView3<f32>,
) -> Result<(f32, Array3<f32>, Dense)> {
    let logits = head(&params.dense, y);
    let (loss, dz) = bce_loss(logits.view(), targets)?;
    let (b, t, c) = dz.dim();
    let h = y.dim().2;
    let dz: Array2<f32> = dz
        .into_shape_with_order((b * t, c))
        .expect("standard layout");
    let y_flat = y
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * t, h))
        .expect("standard layout");
    let dense = Dense {
        weight: dz.t().dot(&y_flat),
        bias: dz.sum_axis(Axis(0)),
    };
    let dy = dz
        .dot(&params.dense.weight)
        .into_shape_with_order((b, t, h))
        .expect("b·t rows");
    Ok((loss, dy, dense))
}

/// The bias a head starts with so that its first predictions are the mean intensity
/// of each pixel column (training then starts from the right overall ink level).
pub fn column_mean_bias(images: ArrayView3<f32>) -> Array1<f32> {
    images
        .mean_axis(Axis(0))
        .and_then(|m| m.mean_axis(Axis(0)))
        .unwrap_or_else(|| Array1::from_elem(COLS, 0.1))
        .mapv(|p| {
            let p = p.clamp(1e-3, 1.0 - 1e-3);
            (p / (1.0 - p)).ln()
        })
}

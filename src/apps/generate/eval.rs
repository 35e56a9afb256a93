//! How good a generator is, measured two ways:
//!
//! - **agreement**: a separately trained classifier (the one `lstm-wgpu train` writes)
//!   labels generated digits; the fraction labelled as the class they were conditioned
//!   on, per class;
//! - **completion cross-entropy**: on held-out digits, the mean per-pixel binary
//!   cross-entropy of the predicted bottom half given the top half, against a baseline
//!   that predicts the mean training digit's bottom half.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::model::ROWS;
use super::sample::{continue_digits, likeliest_class, sample, SampleOptions};
use crate::error::{LstmError, Result};
use crate::train::ClassifierParams;

/// The classifier's labels of generated digits, per conditioning class.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// `(labelled as the conditioning class, drawn)` per class.
    pub per_class: Vec<(usize, usize)>,
}

impl Agreement {
    pub fn overall(&self) -> f64 {
        let (hit, all) = self
            .per_class
            .iter()
            .fold((0, 0), |(h, a), &(hc, ac)| (h + hc, a + ac));
        hit as f64 / all.max(1) as f64
    }

    /// The lowest per-class fraction.
    pub fn worst(&self) -> f64 {
        self.per_class
            .iter()
            .map(|&(h, a)| h as f64 / a.max(1) as f64)
            .fold(1.0, f64::min)
    }
}

/// The class a classifier gives each image `[N, 28, 28]` (argmax of its logits).
pub fn classify(classifier: &ClassifierParams, images: ArrayView3<f32>) -> Result<Vec<usize>> {
    let feat = crate::apps::inspect::final_features(classifier, images)?;
    let logits = feat.dot(&classifier.dense.weight.t()) + &classifier.dense.bias;
    Ok(logits
        .outer_iter()
        .map(|r| argmax(r.iter().copied()))
        .collect())
}

fn argmax(v: impl Iterator<Item = f32>) -> usize {
    v.enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// Draws `per_class` digits of every class and has `classifier` label them.
pub fn agreement(
    generator: &ClassifierParams,
    classifier: &ClassifierParams,
    per_class: usize,
    opts: &SampleOptions,
) -> Result<(Agreement, Array3<f32>)> {
    if per_class == 0 {
        return Err(LstmError::value("samples per class", "must be ≥ 1"));
    }
    let classes: Vec<usize> = (0..10)
        .flat_map(|c| std::iter::repeat_n(c, per_class))
        .collect();
    let drawn = sample(generator, &classes, opts)?;
    let got = classify(classifier, drawn.images.view())?;
    let mut per = vec![(0, 0); 10];
    for (&want, &label) in classes.iter().zip(&got) {
        per[want].1 += 1;
        per[want].0 += usize::from(want == label);
    }
    Ok((Agreement { per_class: per }, drawn.images))
}

/// Mean binary cross-entropy (nats per pixel) of probabilities `p` against intensities
/// `t` over rows `from..28`; `p` is clamped to `[1e-6, 1 − 1e-6]` so a confident miss
/// costs about 14 nats, not infinity.
pub fn bce_rows(p: ArrayView3<f32>, t: ArrayView3<f32>, from: usize) -> Result<f64> {
    if p.shape() != t.shape() || from >= p.dim().1 {
        return Err(LstmError::shape(
            "predictions and digits",
            format!("the same shape, with more than {from} rows"),
            format!("{:?} and {:?}", p.shape(), t.shape()),
        ));
    }
    let (p, t) = (p.slice(s![.., from.., ..]), t.slice(s![.., from.., ..]));
    let sum: f64 = p
        .iter()
        .zip(t.iter())
        .map(|(&p, &t)| {
            let p = f64::from(p.clamp(1e-6, 1.0 - 1e-6));
            let t = f64::from(t);
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum();
    Ok(sum / p.len().max(1) as f64)
}

/// The completion figures of [`completion_bce`].
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The completed digits and their predicted probabilities.
    pub drawn: super::sample::Drawn,
    /// The class each digit was completed as (inferred from its top half).
    pub classes: Vec<usize>,
    /// Mean per-pixel cross-entropy of the predicted bottom halves.
    pub model_bce: f64,
    /// The same for the mean training digit's bottom half.
    pub baseline_bce: f64,
}

/// Completes the bottom halves of `digits` `[N, 28, 28]` from their top `k` rows — the
/// class inferred from those rows (no label used) — and scores the predicted
/// probabilities against the true bottom halves, beside the mean-digit baseline.
pub fn completion_bce(
    generator: &ClassifierParams,
    digits: ArrayView3<f32>,
    mean_digit: ArrayView2<f32>,
    k: usize,
    opts: &SampleOptions,
) -> Result<Completion> {
    if k == 0 || k >= ROWS || mean_digit.dim() != (ROWS, ROWS) {
        return Err(LstmError::value(
            "completion",
            format!("k = {k} given rows (1..28) and a 28×28 mean digit"),
        ));
    }
    let top = digits.slice(s![.., ..k, ..]);
    let classes = likeliest_class(generator, top)?;
    let drawn = continue_digits(generator, top, &classes, opts)?;
    let model_bce = bce_rows(drawn.probs.view(), digits, k)?;
    let baseline = mean_digit.broadcast(digits.raw_dim()).ok_or_else(|| {
        LstmError::shape(
            "mean digit",
            "[28, 28]",
            format!("{:?}", mean_digit.shape()),
        )
    })?;
    let baseline_bce = bce_rows(baseline, digits, k)?;
    Ok(Completion {
        drawn,
        classes,
        model_bce,
        baseline_bce,
    })
}

/// The pixelwise mean of `[N, 28, 28]` images.
pub fn mean_image(images: ArrayView3<f32>) -> Result<Array2<f32>> {
    images
        .mean_axis(Axis(0))
        .ok_or_else(|| LstmError::value("mean digit", "no images"))
}

//! Looking inside a trained classifier (the seed article's "interpretability"): which
//! units respond to which class, how to order units so a heatmap shows structure, and
//! which pixels the decision rests on (gradient × input, through this crate's own BPTT).

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use crate::cpu::{self, Upstream};
use crate::error::{LstmError, Result};
use crate::gpu::GpuLstm;
use crate::sequence::ForwardOptions;
use crate::train::ClassifierParams;

/// The classifier's features: the top layer's final hidden state (both directions
/// concatenated), `[N, D·H]`, for inputs `[N, T, I]` (one sequence per row of `x`,
/// whatever the model's layout).
pub fn final_features(params: &ClassifierParams, x: ArrayView3<f32>) -> Result<Array2<f32>> {
    params.validate()?;
    let c = &params.lstm.config;
    let (d, h) = (c.num_directions(), c.hidden_size);
    let top = (c.num_layers - 1) * d;
    let n = x.dim().0;
    let mut feat = Array2::<f32>::zeros((n, d * h));
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let part = x.slice(s![start..end, .., ..]);
        let part = if c.batch_first {
            part
        } else {
            part.permuted_axes([1, 0, 2])
        };
        let out = cpu::forward(&params.lstm, part, ForwardOptions::default())?;
        for k in 0..d {
            feat.slice_mut(s![start..end, k * h..(k + 1) * h])
                .assign(&out.h_n.index_axis(Axis(0), top + k));
        }
    }
    Ok(feat)
}

/// Gradient × input of the logit of `class` with respect to every input value of one
/// sequence `x` `[T, I]` (for MNIST rows, one value per pixel): the backward of this
/// crate — `cpu::backward`, or `GpuLstm::forward_backward` when `gpu` is given (it must
/// hold `params.lstm`) — from `∂logit/∂h_n = W_fc[class]`.
pub fn attribution(
    params: &ClassifierParams,
    x: ArrayView2<f32>,
    class: usize,
    gpu: Option<&GpuLstm>,
) -> Result<Array2<f32>> {
    params.validate()?;
    let c = &params.lstm.config;
    if class >= params.dense.classes() {
        return Err(LstmError::value(
            "class",
            format!(
                "{class} is not below the {} classes",
                params.dense.classes()
            ),
        ));
    }
    let (t, i) = x.dim();
    let x3 = if c.batch_first {
        x.to_owned().into_shape_with_order((1, t, i))
    } else {
        x.to_owned().into_shape_with_order((t, 1, i))
    }
    .map_err(|e| LstmError::shape("attribution input", "[T, I]", e.to_string()))?;
    let (d, h) = (c.num_directions(), c.hidden_size);
    let top = (c.num_layers - 1) * d;
    let mut dh_n = Array3::<f32>::zeros((c.num_layers * d, 1, h));
    for k in 0..d {
        dh_n.slice_mut(s![top + k, 0, ..])
            .assign(&params.dense.weight.slice(s![class, k * h..(k + 1) * h]));
    }
    let up = Upstream {
        dh_n: Some(dh_n.view()),
        ..Default::default()
    };
    let opts = ForwardOptions::default();
    let dx = match gpu {
        Some(lstm) => lstm.forward_backward(x3.view(), opts, up)?.1.dx,
        None => {
            let (_, cache) = cpu::forward_train(&params.lstm, x3.view(), opts)?;
            cpu::backward(&params.lstm, &cache, up)?.dx
        }
    };
    let dx = dx
        .into_shape_with_order((t, i))
        .map_err(|e| LstmError::shape("attribution gradient", "[T, I]", e.to_string()))?;
    Ok(dx * x)
}

/// An order of the units of `a` `[T, H]` (one sequence's trace) under which a heatmap
/// shows structure: by the step where each unit's magnitude peaks, then by the sign of
/// that peak — units that switch on early come first, so the heatmap forms a diagonal.
pub fn unit_order(a: ArrayView2<f32>) -> Vec<usize> {
    let mut keys: Vec<(usize, bool, usize)> = (0..a.ncols())
        .map(|j| {
            let col = a.column(j);
            let (peak, v) = col.iter().enumerate().fold((0, 0.0f32), |b, (t, &v)| {
                if v.abs() > b.1.abs() {
                    (t, v)
                } else {
                    b
                }
            });
            (peak, v < 0.0, j)
        })
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|(_, _, j)| j).collect()
}

/// How strongly one unit's final hidden state singles out one class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Selectivity {
    /// Index into the features (`d·H + j` for direction `d`, unit `j`).
    pub unit: usize,
    pub class: usize,
    /// `(mean over the class − mean of the other classes' means) / std over all digits`:
    /// positive when the unit is on for the class, negative when it is off.
    pub score: f32,
    pub mean_class: f32,
    pub mean_rest: f32,
}

/// Every unit's most selective class on the digits `x` `[N, T, I]` with `labels`,
/// most selective first (by `|score|`).
pub fn class_selectivity(
    params: &ClassifierParams,
    x: ArrayView3<f32>,
    labels: &[usize],
) -> Result<Vec<Selectivity>> {
    let classes = params.dense.classes();
    if labels.len() != x.dim().0 || labels.iter().any(|&l| l >= classes) {
        return Err(LstmError::value(
            "labels",
            format!(
                "need one label below {classes} per digit ({} digits)",
                x.dim().0
            ),
        ));
    }
    let feat = final_features(params, x)?;
    let units = feat.ncols();
    let mut sums = Array2::<f64>::zeros((classes, units));
    let mut counts = vec![0usize; classes];
    for (row, &l) in feat.outer_iter().zip(labels) {
        counts[l] += 1;
        sums.row_mut(l)
            .zip_mut_with(&row, |s, &v| *s += f64::from(v));
    }
    let present: Vec<usize> = (0..classes).filter(|&c| counts[c] > 0).collect();
    if present.len() < 2 {
        return Err(LstmError::value(
            "labels",
            "need digits of at least two classes",
        ));
    }
    let std = feat.std_axis(Axis(0), 0.0);
    let mut out = Vec::with_capacity(units);
    for j in 0..units {
        let mean = |c: usize| sums[[c, j]] / counts[c] as f64;
        let best = present
            .iter()
            .map(|&c| {
                let rest = present
                    .iter()
                    .filter(|&&o| o != c)
                    .map(|&o| mean(o))
                    .sum::<f64>()
                    / (present.len() - 1) as f64;
                let score = (mean(c) - rest) / (f64::from(std[j]) + 1e-6);
                Selectivity {
                    unit: j,
                    class: c,
                    score: score as f32,
                    mean_class: mean(c) as f32,
                    mean_rest: rest as f32,
                }
            })
            .fold(None::<Selectivity>, |b, s| match b {
                Some(b) if b.score.abs() >= s.score.abs() => Some(b),
                _ => Some(s),
            });
        out.extend(best);
    }
    out.sort_by(|a, b| b.score.abs().total_cmp(&a.score.abs()));
    Ok(out)
}

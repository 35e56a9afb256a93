//! Twin of `shaders/softmax_xent.wgsl`: the classifier's loss and its gradient.

use ndarray::{Array2, ArrayView2};

use crate::error::{LstmError, Result};

/// Twin of `softmax_xent.wgsl`. Returns `dlogits` `[R, C]` (already scaled by `scale`)
/// and per-row `(nll·w, w·[argmax == target])`.
pub fn softmax_xent(
    logits: ArrayView2<f32>,
    targets: &[u32],
    weights: &[f32],
    scale: f32,
) -> Result<(Array2<f32>, Vec<[f32; 2]>)> {
    let (rows, classes) = logits.dim();
    if targets.len() != rows || weights.len() != rows {
        return Err(LstmError::shape(
            "softmax_xent targets / weights",
            format!("{rows} / {rows} (one per logits row)"),
            format!("{} / {}", targets.len(), weights.len()),
        ));
    }
    if let Some((r, &t)) = targets
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= classes)
    {
        return Err(LstmError::value(
            format!("targets[{r}]"),
            format!("label {t} is not below the {classes} classes"),
        ));
    }
    let mut d = Array2::zeros(logits.raw_dim());
    let mut stats = Vec::with_capacity(logits.nrows());
    for (r, row) in logits.rows().into_iter().enumerate() {
        // First maximum wins ties, like argmax in numpy and torch.
        let (arg, m) = row
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            });
        let log_s = row.iter().map(|&v| (v - m).exp()).sum::<f32>().ln();
        let (t, w) = (targets[r] as usize, weights[r]);
        for (c, &v) in row.iter().enumerate() {
            let p = (v - m - log_s).exp();
            d[[r, c]] = (p - if c == t { 1.0 } else { 0.0 }) * w * scale;
        }
        stats.push([-(row[t] - m - log_s) * w, if arg == t { w } else { 0.0 }]);
    }
    Ok((d, stats))
}

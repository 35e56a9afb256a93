//! CPU twins of the training kernels: `shaders/softmax_xent.wgsl` and
//! `shaders/optimizer.wgsl`.

use ndarray::{Array2, ArrayView2};

/// Twin of `softmax_xent.wgsl`. Returns `dlogits` `[R, C]` (already scaled by `scale`)
/// and per-row `(nll·w, w·[argmax == target])`.
pub fn softmax_xent(
    logits: ArrayView2<f32>,
    targets: &[u32],
    weights: &[f32],
    scale: f32,
) -> (Array2<f32>, Vec<[f32; 2]>) {
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
    (d, stats)
}

/// One optimizer step's settings (the uniform of `optimizer.wgsl`).
#[derive(Clone, Copy, Debug)]
pub struct UpdateRule {
    /// `true` for Adam, `false` for SGD with momentum `beta1`.
    pub adam: bool,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// ≤ 0: no clipping.
    pub max_norm: f32,
    /// Step number, from 1.
    pub t: u64,
}

/// Twin of `optimizer.wgsl` (`sum_squares` then `update`) over a list of tensors.
pub fn optimizer_update(
    params: &mut [&mut [f32]],
    grads: &[&[f32]],
    m: &mut [Vec<f32>],
    v: &mut [Vec<f32>],
    rule: &UpdateRule,
) {
    let total: f32 = grads
        .iter()
        .map(|g| g.iter().map(|x| x * x).sum::<f32>())
        .sum();
    let clip = if rule.max_norm > 0.0 {
        (rule.max_norm / (total.sqrt() + 1e-6)).min(1.0)
    } else {
        1.0
    };
    let bias1 = 1.0 - rule.beta1.powi(rule.t as i32);
    let bias2 = 1.0 - rule.beta2.powi(rule.t as i32);
    for (k, p) in params.iter_mut().enumerate() {
        for i in 0..p.len() {
            let g = clip * grads[k][i] + rule.weight_decay * p[i];
            if rule.adam {
                m[k][i] = rule.beta1 * m[k][i] + (1.0 - rule.beta1) * g;
                v[k][i] = rule.beta2 * v[k][i] + (1.0 - rule.beta2) * g * g;
                p[i] -= rule.lr * (m[k][i] / bias1) / ((v[k][i] / bias2).sqrt() + rule.eps);
            } else {
                m[k][i] = if rule.t == 1 {
                    g
                } else {
                    rule.beta1 * m[k][i] + g
                };
                p[i] -= rule.lr * m[k][i];
            }
        }
    }
}

impl UpdateRule {
    pub fn new(cfg: &crate::train::TrainConfig, t: u64) -> Self {
        let (adam, beta1, beta2, eps) = match cfg.optimizer {
            crate::train::Optimizer::Adam { beta1, beta2, eps } => (true, beta1, beta2, eps),
            crate::train::Optimizer::Sgd { momentum } => (false, momentum, 0.0, 0.0),
        };
        UpdateRule {
            adam,
            lr: cfg.lr,
            beta1,
            beta2,
            eps,
            weight_decay: cfg.weight_decay,
            max_norm: cfg.clip_norm.unwrap_or(0.0),
            t,
        }
    }
}

//! Twin of `shaders/optimizer_update.wgsl`: one Adam or SGD step over a list of tensors,
//! after clipping their gradients to a global L2 norm. Its settings ([`UpdateRule`]) are
//! made from the training settings by `train::TrainConfig::update_rule`.

use crate::error::{LstmError, Result};

/// One optimizer step's settings (the uniform of `optimizer_update.wgsl`).
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

/// Twin of `optimizer_update.wgsl` (`sum_squares` then `update`) over a list of tensors.
pub fn optimizer_update(
    params: &mut [&mut [f32]],
    grads: &[&[f32]],
    m: &mut [Vec<f32>],
    v: &mut [Vec<f32>],
    rule: &UpdateRule,
) -> Result<()> {
    let lens: Vec<usize> = params.iter().map(|p| p.len()).collect();
    let same = |other: Vec<usize>| other == lens;
    if !(same(grads.iter().map(|g| g.len()).collect())
        && same(m.iter().map(Vec::len).collect())
        && same(v.iter().map(Vec::len).collect()))
    {
        return Err(LstmError::shape(
            "optimizer_update params / grads / m / v",
            format!("the same tensor sizes in each: {lens:?}"),
            "lists of other lengths or sizes",
        ));
    }
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
    Ok(())
}

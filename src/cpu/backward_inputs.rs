//! What [`super::backward`] checks before it starts: that the forward cache came from
//! these weights, and the shape of the upstream `∂L/∂y`.

use ndarray::{Array3, ArrayView3};

use super::forward::ForwardCache;
use crate::error::{LstmError, Result};
use crate::sequence::to_time_major;
use crate::weights::LstmWeights;

/// `(T, B)` of a cache that [`forward_train`] made for these weights; a typed error
/// for a cache from another model or call (it would index out of bounds).
pub(super) fn check_cache(weights: &LstmWeights, cache: &ForwardCache) -> Result<(usize, usize)> {
    let cfg = &weights.config;
    let bad = |why: String| LstmError::value("forward cache", why);
    let x0 = cache
        .layer_inputs
        .first()
        .ok_or_else(|| bad("empty: run forward_train first".into()))?;
    let (t, b, _) = x0.dim();
    let ld_count = cfg.num_layers * cfg.num_directions();
    if cache.layer_inputs.len() != cfg.num_layers || cache.steps.len() != ld_count {
        return Err(bad(format!(
            "holds {} layers / {} layer-directions, the weights have {} / {ld_count}: not from forward_train on these weights",
            cache.layer_inputs.len(),
            cache.steps.len(),
            cfg.num_layers
        )));
    }
    let h = cfg.hidden_size;
    for (l, x) in cache.layer_inputs.iter().enumerate() {
        if x.dim() != (t, b, cfg.layer_input_size(l)) {
            return Err(bad(format!(
                "layer {l} input is {:?}, expected [{t}, {b}, {}]",
                x.dim(),
                cfg.layer_input_size(l)
            )));
        }
    }
    for (ld, sc) in cache.steps.iter().enumerate() {
        if sc.gates.dim() != (t, b, 4 * h)
            || sc.h_prev.dim() != (t, b, h)
            || sc.c_prev.dim() != (t, b, h)
        {
            return Err(bad(format!(
                "layer-direction {ld} was recorded with another shape or hidden size"
            )));
        }
    }
    if cache.lens.len() != b || cache.lens.iter().any(|&n| n > t) {
        return Err(bad(format!(
            "{} sequence lengths for batch {b} (T = {t})",
            cache.lens.len()
        )));
    }
    Ok((t, b))
}

/// `∂L/∂y` time-major `[T, B, D·H]` (zeros when absent), its shape checked.
pub(super) fn upstream_dy(
    weights: &LstmWeights,
    dy: Option<ArrayView3<f32>>,
    t_len: usize,
    b: usize,
) -> Result<Array3<f32>> {
    let cfg = &weights.config;
    let width = cfg.output_size();
    let Some(dy) = dy else {
        return Ok(Array3::zeros((t_len, b, width)));
    };
    let want = if cfg.batch_first {
        [b, t_len, width]
    } else {
        [t_len, b, width]
    };
    if dy.shape() != want {
        return Err(LstmError::shape(
            "dy",
            format!("{want:?}"),
            format!("{:?}", dy.shape()),
        ));
    }
    Ok(to_time_major(cfg, &dy))
}

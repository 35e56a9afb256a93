//! CPU reference backward (BPTT): the sweep over steps (each step in `lstm_step_backward`,
//! the spec for `shaders/lstm_step_backward.wgsl`) and the
//! gradient GEMMs. Plain and readable, like the forward.
//!
//! Per layer-direction the steps run in the reverse of the forward's order. At each
//! step the incoming `dh` (from the step after it, plus `dy` while the sequence is
//! live) and `dc` give the gate pre-activation gradients `dz`; then
//! `dh_{t-1} = dz·W_hh` (and `dc_{t-1} += dz·W_ch` for Full peepholes). The weight
//! gradients come afterwards from products over all steps at once:
//! `dW_ih = dZᵀ·X`, `dW_hh = dZᵀ·H_prev`, `db = Σ dZ`, `dX = dZ·W_ih`.

use ndarray::{s, Array2, Array3, ArrayView3, Axis};

use super::backward_inputs::{check_cache, upstream_dy};
use super::forward::{forward_impl, fresh_packs, ForwardCache, StepCache};
use super::lstm_param_grads::weight_grads;
use super::lstm_step_backward::{step_backward, PackedBackward};
use super::simd::mark_live;
use crate::error::{LstmError, Result};
use crate::sequence::{from_time_major, ForwardOptions, LstmOutput};
use crate::weights::{LayerWeights, LstmWeights};

/// Gradients of a loss with respect to everything the forward consumed.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// Same layout as the weights. `b_ih` and `b_hh` both receive `Σ dz`, as in PyTorch.
    pub params: LstmWeights,
    /// `∂L/∂x` in the caller's layout.
    pub dx: Array3<f32>,
    /// `∂L/∂h_0`, `∂L/∂c_0`, `[L·D, B, H]`.
    pub dh0: Array3<f32>,
    pub dc0: Array3<f32>,
}

/// Forward that keeps what [`backward`] needs.
pub fn forward_train(
    weights: &LstmWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<(LstmOutput, ForwardCache)> {
    let mut cache = ForwardCache::default();
    let out = forward_impl(weights, &fresh_packs(weights), x, opts, Some(&mut cache))?;
    Ok((out, cache))
}

/// [`forward_train`] into `cache`, reusing its arrays where the shapes match: a training
/// loop that keeps one cache allocates none of them after its first step (the fresh
/// ~25 MiB per step of the seed model had cost ~10 % of a step in page faults).
pub fn forward_train_into(
    weights: &LstmWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
    cache: &mut ForwardCache,
) -> Result<LstmOutput> {
    forward_impl(weights, &fresh_packs(weights), x, opts, Some(cache))
}

/// Upstream gradients of the loss; any may be absent (treated as zero).
#[derive(Clone, Copy, Debug, Default)]
pub struct Upstream<'a> {
    /// `∂L/∂y` in the caller's layout (`[T, B, D·H]` or `[B, T, D·H]`).
    pub dy: Option<ArrayView3<'a, f32>>,
    /// `∂L/∂h_n`, `∂L/∂c_n`, `[L·D, B, H]`.
    pub dh_n: Option<ArrayView3<'a, f32>>,
    pub dc_n: Option<ArrayView3<'a, f32>>,
}

/// BPTT through the whole stack, from a [`forward_train`] cache.
pub fn backward(weights: &LstmWeights, cache: &ForwardCache, up: Upstream) -> Result<Gradients> {
    backward_impl(weights, cache, up, true)
}

/// [`backward`] without `∂L/∂x` (`dx` comes back empty, `[0, 0, 0]`): a model trained
/// from its first layer needs none, and it is a `[T·B, 4H] × [4H, I]` product (2–3 %
/// of the seed model's training step).
pub fn backward_without_dx(
    weights: &LstmWeights,
    cache: &ForwardCache,
    up: Upstream,
) -> Result<Gradients> {
    backward_impl(weights, cache, up, false)
}

fn backward_impl(
    weights: &LstmWeights,
    cache: &ForwardCache,
    up: Upstream,
    want_dx: bool,
) -> Result<Gradients> {
    weights.validate()?;
    let cfg = &weights.config;
    let (h, dirs) = (cfg.hidden_size, cfg.num_directions());
    let (t_len, b) = check_cache(weights, cache)?;
    let state_shape = [cfg.num_layers * dirs, b, h];
    let mut dy = upstream_dy(weights, up.dy, t_len, b)?;
    for (name, v) in [("dh_n", up.dh_n), ("dc_n", up.dc_n)] {
        if let Some(v) = v {
            if v.shape() != state_shape {
                return Err(LstmError::shape(
                    name,
                    format!("{state_shape:?}"),
                    format!("{:?}", v.shape()),
                ));
            }
        }
    }
    let mut grads: Vec<Option<LayerWeights>> = vec![None; weights.layers.len()];
    let mut dh0 = Array3::<f32>::zeros(state_shape);
    let mut dc0 = Array3::<f32>::zeros(state_shape);
    for l in (0..cfg.num_layers).rev() {
        let x_l = &cache.layer_inputs[l];
        let rows = t_len * b;
        let x_flat = x_l
            .view()
            .into_shape_with_order((rows, x_l.dim().2))
            .expect("contiguous");
        let mut dx_l = Array2::<f32>::zeros((rows, x_l.dim().2));
        for d in 0..dirs {
            let ld = weights.index(l, d);
            let w = &weights.layers[ld];
            let start = |v: Option<ArrayView3<f32>>| {
                v.map(|v| super::aligned::copy_of(v.index_axis(Axis(0), ld)))
                    .unwrap_or_else(|| super::aligned::zeros((b, h)))
            };
            let (dz, dh, dc) = backward_direction(
                w,
                &cache.steps[ld],
                &cache.lens,
                dy.slice(s![.., .., d * h..(d + 1) * h]),
                (start(up.dh_n), start(up.dc_n)),
                d == 1,
            );
            dh0.index_axis_mut(Axis(0), ld).assign(&dh);
            dc0.index_axis_mut(Axis(0), ld).assign(&dc);
            grads[ld] = Some(weight_grads(cfg.bias, w, &cache.steps[ld], &dz, x_flat)?);
            if l > 0 || want_dx {
                dx_l += &super::threads::dot_rows(dz.view(), w.w_ih.view());
            }
        }
        dy = dx_l
            .into_shape_with_order(x_l.raw_dim())
            .expect("contiguous");
    }
    let layers = grads
        .into_iter()
        .map(|g| g.expect("every layer-direction visited"))
        .collect();
    Ok(Gradients {
        params: LstmWeights {
            config: cfg.clone(),
            layers,
        },
        dx: match want_dx {
            true => from_time_major(cfg, dy),
            false => Array3::zeros((0, 0, 0)),
        },
        dh0,
        dc0,
    })
}

/// The backward steps of one layer-direction, in the reverse of the forward's order,
/// from the gradients `(dh, dc)` reaching its final state. `dy` `[T, B, H]` is this
/// direction's slice of `∂L/∂y`. Returns `dZ` `[T·B, 4H]` and `(dh_0, dc_0)`.
fn backward_direction(
    w: &LayerWeights,
    sc: &StepCache,
    lens: &[usize],
    dy: ArrayView3<f32>,
    (mut dh, mut dc): (Array2<f32>, Array2<f32>),
    reverse: bool,
) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let (t_len, b, h) = dy.dim();
    let packed = PackedBackward::new(w, b);
    let mut dz_all = super::aligned::zeros((t_len, b, 4 * h));
    let mut scratch = super::aligned::zeros((b, h));
    let mut active = vec![false; b];
    for s in 0..t_len {
        // Reverse of the forward's order: the forward direction from T-1 down.
        let t = if reverse { s } else { t_len - 1 - s };
        mark_live(&mut active, lens, t);
        let dy_t = dy.index_axis(Axis(0), t);
        for ((mut dh_row, dy_row), _) in dh
            .rows_mut()
            .into_iter()
            .zip(dy_t.rows())
            .zip(&active)
            .filter(|(_, &on)| on)
        {
            dh_row += &dy_row;
        }
        step_backward(
            (&mut dh, &mut dc),
            sc.gates.index_axis(Axis(0), t),
            sc.c_prev.index_axis(Axis(0), t),
            w,
            &active,
            packed.as_ref(),
            dz_all.index_axis_mut(Axis(0), t),
            &mut scratch,
        );
    }
    let dz = dz_all
        .into_shape_with_order((t_len * b, 4 * h))
        .expect("contiguous");
    (dz, dh, dc)
}

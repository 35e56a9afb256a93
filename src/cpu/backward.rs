//! CPU reference backward (BPTT): the spec for `shaders/lstm_step_backward.wgsl` and the
//! gradient GEMMs. Plain and readable, like the forward.
//!
//! Per layer-direction the steps run in the reverse of the forward's order. At each
//! step the incoming `dh` (from the step after it, plus `dy` while the sequence is
//! live) and `dc` give the gate pre-activation gradients `dz`; then
//! `dh_{t-1} = dz·W_hh` (and `dc_{t-1} += dz·W_ch` for Full peepholes). The weight
//! gradients come afterwards from products over all steps at once:
//! `dW_ih = dZᵀ·X`, `dW_hh = dZᵀ·H_prev`, `db = Σ dZ`, `dX = dZ·W_ih`.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis};

use super::backward_inputs::{check_cache, upstream_dy};
use super::forward::{forward_impl, ForwardCache, StepCache};
use super::gemm::PackedWeights;
use super::lstm_param_grads::weight_grads;
use crate::error::{LstmError, Result};
use crate::sequence::{from_time_major, ForwardOptions, LstmOutput};
use crate::weights::{LayerWeights, LstmWeights, PeepholeWeights};

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
    let out = forward_impl(weights, x, opts, Some(&mut cache))?;
    Ok((out, cache))
}

/// Twin of `shaders/lstm_step_backward.wgsl`: one step of BPTT for a batch.
///
/// `dh` `[B, H]` is the total gradient reaching `h_t` (including `dy_t` for live rows),
/// `dc` the gradient reaching `c_t` from later steps; `gates` `[B, 4H]` and `c_prev` come
/// from the forward. Returns `(dz [B, 4H], dh_{t-1}, dc_{t-1})`; rows that are not live
/// pass `dh` and `dc` through unchanged (their state was copied) with `dz = 0`.
pub fn lstm_step_backward(
    dh: ArrayView2<f32>,
    dc: ArrayView2<f32>,
    gates: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
) -> Result<(Array2<f32>, Array2<f32>, Array2<f32>)> {
    let states = [("dh", dh.dim()), ("dc", dc.dim()), ("c_prev", c_prev.dim())];
    super::reference::check_step(w, &[("gates", gates.dim())], &states, active)?;
    let (mut dh, mut dc) = (dh.to_owned(), dc.to_owned());
    let mut dz = Array2::zeros(gates.raw_dim());
    let mut scratch = Array2::zeros(dh.raw_dim());
    let state = (&mut dh, &mut dc);
    step_backward(
        state,
        gates,
        c_prev,
        w,
        active,
        None,
        dz.view_mut(),
        &mut scratch,
    );
    Ok((dz, dh, dc))
}

/// The recurrent matrices of one layer-direction packed once for all T backward steps
/// (`dz·W_hh` is `dz·(W_hhᵀ)ᵀ`: the forward's packed kernel on the transpose).
struct PackedBackward {
    w_hh: PackedWeights,
    w_ch: Option<PackedWeights>,
}

impl PackedBackward {
    /// `None` at small batch, where packing costs more than it saves (as in the forward).
    fn new(w: &LayerWeights, batch: usize) -> Option<Self> {
        (batch > super::matvec::MATVEC_MAX_BATCH).then(|| PackedBackward {
            w_hh: PackedWeights::new(w.w_hh.t()),
            w_ch: match &w.peephole {
                PeepholeWeights::Full(m) => Some(PackedWeights::new(m.t())),
                _ => None,
            },
        })
    }
}

/// [`lstm_step_backward`] in place, with optionally prepacked recurrent matrices: `dh`
/// and `dc` hold the gradients reaching `h_t` and `c_t` on entry and those reaching
/// `h_{t-1}` and `c_{t-1}` on exit; `dz` (zero on entry) receives the live rows' gate
/// gradients; `scratch` is `[B, H]` of any content. No allocation.
#[allow(clippy::too_many_arguments)]
fn step_backward(
    (dh, dc): (&mut Array2<f32>, &mut Array2<f32>),
    gates: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
    packed: Option<&PackedBackward>,
    mut dz: ArrayViewMut2<f32>,
    scratch: &mut Array2<f32>,
) {
    let hs = dh.ncols();
    let diag = match &w.peephole {
        PeepholeWeights::Diagonal(p) => p.as_slice(),
        _ => None,
    };
    let (gates_s, cp_s) = (gates.as_standard_layout(), c_prev.as_standard_layout());
    let gates_v = gates_s.as_slice().expect("standard layout");
    let cp_v = cp_s.as_slice().expect("standard layout");
    for (b, &on) in active.iter().enumerate() {
        if !on {
            continue;
        }
        let (gr, cpr) = (&gates_v[b * 4 * hs..][..4 * hs], &cp_v[b * hs..][..hs]);
        let (dhr, mut dzr, mut dcr) = (dh.row(b), dz.row_mut(b), dc.row_mut(b));
        match (dhr.as_slice(), dzr.as_slice_mut(), dcr.as_slice_mut()) {
            (Some(dhr), Some(dzr), Some(dcr)) => backward_row(dhr, gr, cpr, diag, dzr, dcr),
            _ => unreachable!("the backward's arrays are standard layout"),
        }
    }
    // dh_{t-1} = dz·W_hh into `scratch`, then swapped in; rows that are not live pass
    // dh through (their state was copied forward).
    match packed {
        Some(p) => {
            scratch.fill(0.0);
            p.w_hh.mul_acc(dz.view(), &mut scratch.view_mut());
            if let Some(w_ch) = &p.w_ch {
                w_ch.mul_acc(dz.view(), &mut dc.view_mut());
            }
        }
        None => {
            general_mat_mul(1.0, &dz, &w.w_hh, 0.0, scratch);
            if let PeepholeWeights::Full(w_ch) = &w.peephole {
                general_mat_mul(1.0, &dz, w_ch, 1.0, dc);
            }
        }
    }
    for (b, &on) in active.iter().enumerate() {
        if !on {
            scratch.row_mut(b).assign(&dh.row(b));
        }
    }
    std::mem::swap(dh, scratch);
}

avx2_dispatch!(
    /// The pointwise half of a backward step for one live batch row. On entry `dc` holds
    /// the gradient reaching `c_t`; on exit `dc_{t-1}` (before any Full-peephole product).
    fn backward_row(dh: &[f32], gates: &[f32], c_prev: &[f32], diag: Option<&[f32]>, dz: &mut [f32], dc: &mut [f32]) => backward_row_body
);

#[inline(always)]
fn backward_row_body(
    dh: &[f32],
    gates: &[f32],
    c_prev: &[f32],
    diag: Option<&[f32]>,
    dz: &mut [f32],
    dc: &mut [f32],
) {
    let hs = dh.len();
    let (gi, gf, gg, go) = (
        &gates[..hs],
        &gates[hs..2 * hs],
        &gates[2 * hs..3 * hs],
        &gates[3 * hs..4 * hs],
    );
    let (c_prev, dc) = (&c_prev[..hs], &mut dc[..hs]);
    let (dzi, rest) = dz[..4 * hs].split_at_mut(hs);
    let (dzf, rest) = rest.split_at_mut(hs);
    let (dzg, dzo) = rest.split_at_mut(hs);
    match diag {
        None => {
            for j in 0..hs {
                let unit = backward_unit::<false>(
                    dh[j],
                    [gi[j], gf[j], gg[j], go[j]],
                    c_prev[j],
                    dc[j],
                    [0.0; 3],
                );
                [dzi[j], dzf[j], dzg[j], dzo[j], dc[j]] = unit;
            }
        }
        Some(p) => {
            let (pi, pf, po) = (&p[..hs], &p[hs..2 * hs], &p[2 * hs..3 * hs]);
            for j in 0..hs {
                let unit = backward_unit::<true>(
                    dh[j],
                    [gi[j], gf[j], gg[j], go[j]],
                    c_prev[j],
                    dc[j],
                    [pi[j], pf[j], po[j]],
                );
                [dzi[j], dzf[j], dzg[j], dzo[j], dc[j]] = unit;
            }
        }
    }
}

/// One unit of [`backward_row`]: `[dz_i, dz_f, dz_g, dz_o, dc_{t-1}]` from the gradients
/// `dh`, `dc` reaching it, its gates `[i, f, g, o]` and `c_{t-1}`; the diagonal peepholes
/// `[p_i, p_f, p_o]` count only when `DIAG` (a constant, so that both loops vectorise:
/// a runtime test on empty peephole slices had kept the loop scalar).
#[inline(always)]
fn backward_unit<const DIAG: bool>(
    dh: f32,
    [i, f, g, o]: [f32; 4],
    cp: f32,
    dc: f32,
    [pi, pf, po]: [f32; 3],
) -> [f32; 5] {
    let tc = super::simd::tanh(f * cp + i * g);
    let dz_o = dh * tc * o * (1.0 - o);
    let mut dct = dc + dh * o * (1.0 - tc * tc);
    if DIAG {
        dct += dz_o * po;
    }
    let dz_i = dct * g * i * (1.0 - i);
    let dz_f = dct * cp * f * (1.0 - f);
    let mut dcp = dct * f;
    if DIAG {
        dcp += dz_i * pi + dz_f * pf;
    }
    [dz_i, dz_f, dct * i * (1.0 - g * g), dz_o, dcp]
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
                v.map(|v| v.index_axis(Axis(0), ld).to_owned())
                    .unwrap_or_else(|| Array2::zeros((b, h)))
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
            dx_l += &super::threads::dot_rows(dz.view(), w.w_ih.view());
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
        dx: from_time_major(cfg, dy),
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
    let mut dz_all = Array3::<f32>::zeros((t_len, b, 4 * h));
    let mut scratch = Array2::zeros((b, h));
    let mut active = vec![false; b];
    for s in 0..t_len {
        // Reverse of the forward's order: the forward direction from T-1 down.
        let t = if reverse { s } else { t_len - 1 - s };
        let dy_t = dy.index_axis(Axis(0), t);
        for (((on, &n), mut dh_row), dy_row) in active
            .iter_mut()
            .zip(lens)
            .zip(dh.rows_mut())
            .zip(dy_t.rows())
        {
            *on = t < n;
            if *on {
                dh_row += &dy_row;
            }
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

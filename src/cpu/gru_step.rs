//! `gru_step` and `gru_step_backward`: one GRU time step and its gradient, the readable
//! twins of `shaders/gru_step.wgsl` and `shaders/gru_step_backward.wgsl`.
//!
//! Layouts (host, row-major): `gx` `[B, 3H]` is the hoisted input projection with its
//! bias folded in (see [`input_bias`]); `w_hh` `[3H, H]` in gate order r, z, n; `b_hn`
//! `[H]` is the recurrent bias of `n` where the reset gate scales it (`reset_after`),
//! else zeros. The step keeps `gates` `[B, 4H]`: r, z, n and `a = W_hn h + b_hn`
//! (what `∂r` needs when the reset comes after; zeros otherwise).

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use super::reference::sigmoid;
use crate::gru::GruLayerWeights;

/// The bias the hoisted input projection adds: `b_ih + b_hh`, without `b_hn` when the
/// reset gate scales it (then [`recurrent_n_bias`] adds it inside the step).
pub fn input_bias(w: &GruLayerWeights, reset_after: bool) -> Array1<f32> {
    let h3 = w.w_ih.nrows();
    let mut sum = Array1::zeros(h3);
    if let Some(b) = &w.b_ih {
        sum += b;
    }
    if let Some(b) = &w.b_hh {
        let keep = if reset_after { 2 * h3 / 3 } else { h3 };
        let mut head = sum.slice_mut(s![..keep]);
        head += &b.slice(s![..keep]);
    }
    sum
}

/// `b_hn` where the reset gate scales it, else zeros: `[H]`.
pub fn recurrent_n_bias(w: &GruLayerWeights, reset_after: bool) -> Array1<f32> {
    let h = w.w_hh.ncols();
    match (&w.b_hh, reset_after) {
        (Some(b), true) => b.slice(s![2 * h..]).to_owned(),
        _ => Array1::zeros(h),
    }
}

/// One step for every batch row: returns `(h_t, gates)`; see the module header.
pub fn gru_step(
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    w_hh: ArrayView2<f32>,
    b_hn: ArrayView1<f32>,
    reset_after: bool,
) -> (Array2<f32>, Array2<f32>) {
    let hs = h.ncols();
    let w_rz = w_hh.slice(s![..2 * hs, ..]);
    let w_n = w_hh.slice(s![2 * hs.., ..]);
    let g_rz = &gx.slice(s![.., ..2 * hs]) + &h.dot(&w_rz.t());
    let r = g_rz.slice(s![.., ..hs]).mapv(sigmoid);
    let z = g_rz.slice(s![.., hs..]).mapv(sigmoid);
    let (a, n_pre) = if reset_after {
        let a = h.dot(&w_n.t()) + b_hn;
        let n_pre = &gx.slice(s![.., 2 * hs..]) + &(&r * &a);
        (a, n_pre)
    } else {
        let n_pre = &gx.slice(s![.., 2 * hs..]) + &(&r * &h).dot(&w_n.t());
        (Array2::zeros(h.raw_dim()), n_pre)
    };
    let n = n_pre.mapv(f32::tanh);
    let h_new = &n + &(&z * &(&h - &n));
    let gates = ndarray::concatenate(Axis(1), &[r.view(), z.view(), n.view(), a.view()])
        .expect("four [B, H] blocks");
    (h_new, gates)
}

/// Gradients of one step, from `dh` (the total `∂L/∂h_t`).
#[derive(Clone, Debug, PartialEq)]
pub struct GruStepGrads {
    /// `[B, 3H]`: `∂L` by the pre-activations of r, z, n (the input side's `dGx`).
    pub dgx: Array2<f32>,
    /// `[B, 3H]`: `∂L` by the recurrent products `W_hr h`, `W_hz h` and `W_hn h + b_hn`
    /// (reset after) or `W_hn (r⊙h)` (reset before).
    pub dgh: Array2<f32>,
    /// `[B, H]`: `∂L/∂h_{t-1}`.
    pub dh_prev: Array2<f32>,
}

/// The gradient of [`gru_step`]: `gates` and `h_prev` are what the forward kept.
pub fn gru_step_backward(
    dh: ArrayView2<f32>,
    gates: ArrayView2<f32>,
    h_prev: ArrayView2<f32>,
    w_hh: ArrayView2<f32>,
    reset_after: bool,
) -> GruStepGrads {
    let hs = h_prev.ncols();
    let block = |k: usize| gates.slice(s![.., k * hs..(k + 1) * hs]);
    let (r, z, n, a) = (block(0), block(1), block(2), block(3));
    let b = dh.nrows();
    let mut dgx = Array2::zeros((b, 3 * hs));
    let mut dh_prev = &dh * &z;
    let dn_pre = &dh * &z.mapv(|v| 1.0 - v) * n.mapv(|v| 1.0 - v * v);
    let dz_pre = &dh * &(&h_prev - &n) * z.mapv(|v| v * (1.0 - v));
    let w_n = w_hh.slice(s![2 * hs.., ..]);
    let (dr, dgh_n) = if reset_after {
        (&dn_pre * &a, &dn_pre * &r)
    } else {
        // n's recurrent operand is r⊙h: its gradient splits between r and h.
        let d_rh = dn_pre.dot(&w_n);
        dh_prev += &(&d_rh * &r);
        (&d_rh * &h_prev, dn_pre.clone())
    };
    let dr_pre = dr * r.mapv(|v| v * (1.0 - v));
    dgx.slice_mut(s![.., ..hs]).assign(&dr_pre);
    dgx.slice_mut(s![.., hs..2 * hs]).assign(&dz_pre);
    dgx.slice_mut(s![.., 2 * hs..]).assign(&dn_pre);
    let mut dgh = dgx.clone();
    dgh.slice_mut(s![.., 2 * hs..]).assign(&dgh_n);
    let w_rz = w_hh.slice(s![..2 * hs, ..]);
    dh_prev += &dgh.slice(s![.., ..2 * hs]).dot(&w_rz);
    if reset_after {
        dh_prev += &dgh_n.dot(&w_n);
    }
    GruStepGrads { dgx, dgh, dh_prev }
}

/// The operand `n`'s recurrent weights multiply: `h_{t-1}`, or `r ⊙ h_{t-1}` when the
/// reset comes first (what `∂W_hn` pairs with).
pub fn n_operand(
    gates: ArrayView2<f32>,
    h_prev: ArrayView2<f32>,
    reset_after: bool,
) -> Array2<f32> {
    if reset_after {
        return h_prev.to_owned();
    }
    let hs = h_prev.ncols();
    let mut out = h_prev.to_owned();
    Zip::from(&mut out)
        .and(gates.slice(s![.., ..hs]))
        .for_each(|o, &r| *o *= r);
    out
}

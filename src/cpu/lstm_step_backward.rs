//! Twin of `shaders/lstm_step_backward.wgsl`, and the in-place, optionally two-thread
//! form of it that [`super::backward`] runs at every step.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use super::gemm::PackedWeights;
use crate::error::Result;
use crate::weights::{LayerWeights, PeepholeWeights};

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
pub(super) struct PackedBackward {
    w_hh: PackedWeights,
    w_ch: Option<PackedWeights>,
}

impl PackedBackward {
    /// `None` at small batch, where packing costs more than it saves (as in the forward).
    pub(super) fn new(w: &LayerWeights, batch: usize) -> Option<Self> {
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
/// gradients; `scratch` is `[B, H]` of any content. No allocation. Rows are independent:
/// with two threads and a large step, each takes half of them (same bits).
#[allow(clippy::too_many_arguments)]
pub(super) fn step_backward(
    (dh, dc): (&mut Array2<f32>, &mut Array2<f32>),
    gates: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
    packed: Option<&PackedBackward>,
    dz: ArrayViewMut2<f32>,
    scratch: &mut Array2<f32>,
) {
    let (b, hs) = dh.dim();
    let rows = |(dh, dc, gates, c_prev, active, dz, dh_prev)| {
        step_backward_rows((dh, dc), (gates, c_prev), w, active, packed, (dz, dh_prev))
    };
    if super::threads::may_split() && b >= 8 && b * 4 * hs * hs >= 1 << 19 {
        let mid = b / 2;
        let (dh0, dh1) = dh.view().split_at(Axis(0), mid);
        let (dc0, dc1) = dc.view_mut().split_at(Axis(0), mid);
        let (g0, g1) = gates.split_at(Axis(0), mid);
        let (cp0, cp1) = c_prev.split_at(Axis(0), mid);
        let (a0, a1) = active.split_at(mid);
        let (dz0, dz1) = dz.split_at(Axis(0), mid);
        let (s0, s1) = scratch.view_mut().split_at(Axis(0), mid);
        super::threads::join(
            true,
            || rows((dh0, dc0, g0, cp0, a0, dz0, s0)),
            || rows((dh1, dc1, g1, cp1, a1, dz1, s1)),
        );
    } else {
        rows((
            dh.view(),
            dc.view_mut(),
            gates,
            c_prev,
            active,
            dz,
            scratch.view_mut(),
        ));
    }
    std::mem::swap(dh, scratch);
}

/// [`step_backward`] on a block of rows: `dc` in place, `dh_{t-1}` into `dh_prev`.
fn step_backward_rows(
    (dh, mut dc): (ArrayView2<f32>, ArrayViewMut2<f32>),
    (gates, c_prev): (ArrayView2<f32>, ArrayView2<f32>),
    w: &LayerWeights,
    active: &[bool],
    packed: Option<&PackedBackward>,
    (mut dz, mut dh_prev): (ArrayViewMut2<f32>, ArrayViewMut2<f32>),
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
    // dh_{t-1} = dz·W_hh; rows that are not live pass dh through (their state was copied
    // forward).
    match packed {
        Some(p) => {
            dh_prev.fill(0.0);
            p.w_hh.mul_acc(dz.view(), &mut dh_prev);
            if let Some(w_ch) = &p.w_ch {
                w_ch.mul_acc(dz.view(), &mut dc);
            }
        }
        None => {
            general_mat_mul(1.0, &dz, &w.w_hh, 0.0, &mut dh_prev);
            if let PeepholeWeights::Full(w_ch) = &w.peephole {
                general_mat_mul(1.0, &dz, w_ch, 1.0, &mut dc);
            }
        }
    }
    for (b, &on) in active.iter().enumerate() {
        if !on {
            dh_prev.row_mut(b).assign(&dh.row(b));
        }
    }
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
    match diag {
        None => backward_units::<false>((dh, gates, c_prev), (dz, dc), |_| [0.0; 3]),
        Some(p) => {
            let (pi, pf, po) = (&p[..hs], &p[hs..2 * hs], &p[2 * hs..3 * hs]);
            backward_units::<true>((dh, gates, c_prev), (dz, dc), |j| [pi[j], pf[j], po[j]])
        }
    }
}

/// [`backward_unit`] over a row's units (`gates`, `dz` `[4H]`, the rest `[H]`), the
/// diagonal peepholes of unit j from `peep(j)`.
#[inline(always)]
fn backward_units<const DIAG: bool>(
    (dh, gates, c_prev): (&[f32], &[f32], &[f32]),
    (dz, dc): (&mut [f32], &mut [f32]),
    peep: impl Fn(usize) -> [f32; 3],
) {
    let hs = dh.len();
    let (gi, gf) = (&gates[..hs], &gates[hs..2 * hs]);
    let (gg, go) = (&gates[2 * hs..3 * hs], &gates[3 * hs..4 * hs]);
    let (c_prev, dc) = (&c_prev[..hs], &mut dc[..hs]);
    let (dzi, rest) = dz[..4 * hs].split_at_mut(hs);
    let (dzf, rest) = rest.split_at_mut(hs);
    let (dzg, dzo) = rest.split_at_mut(hs);
    for j in 0..hs {
        let g = [gi[j], gf[j], gg[j], go[j]];
        let unit = backward_unit::<DIAG>(dh[j], g, c_prev[j], dc[j], peep(j));
        [dzi[j], dzf[j], dzg[j], dzo[j], dc[j]] = unit;
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

//! An LSTM with a projection run as a plain LSTM, layer by layer, so that the LSTM's
//! fused step kernels (and their backward) serve it unchanged.
//!
//! The recurrence only ever sees `h_{t-1} = W_hr m_{t-1}` (with `m = o ⊙ tanh c`)
//! through `W_hh h_{t-1}`, which equals `(W_hh W_hr) m_{t-1}`. So layer `l` is an LSTM
//! of width `H` over the state `m`, with recurrent weights `W_eff = W_hh W_hr` `[4H, H]`,
//! one dispatch per step; its per-step output `m_t` is projected afterwards for all
//! steps at once (`y_t = W_hr m_t`, one GEMM, off the sequential path). The price:
//! the step's product is `4H·H` instead of `4H·P` (measured in BENCHMARKS.md §14).
//!
//! The initial state `h_0` is not representable as an `m_0` in general, so it enters
//! exactly through the input instead: with `h_0` given, layer `l`'s input gains `D·P`
//! columns, holding `h_0` of direction `d` at that direction's first step of each row
//! (`t = 0` forward, `t = len_b − 1` reverse) and zero elsewhere, with `W_hh` as their
//! input weights (zero for the other direction's columns); `m_0 = 0`. The input
//! gradient of those columns is `∂h_0`, their weight gradient part of `∂W_hh`.
//!
//! Gradients map back by the chain rule: `∂W_hh = ∂W_eff W_hrᵀ`, and `W_hr` collects
//! `W_hhᵀ ∂W_eff` from the recurrence plus `Σ_t ∂y_tᵀ m_t` and `∂h_nᵀ m_n` from the
//! projected outputs; the LSTM's upstream is `∂m_t = ∂y_t W_hr`.

use ndarray::{concatenate, s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use crate::config::LstmConfig;
use crate::cpu::{Gradients, Upstream};
use crate::error::{LstmError, Result};
use crate::lstmp::{LstmpLayerWeights, LstmpWeights};
use crate::sequence::{ForwardOptions, LstmOutput, LstmState};
use crate::weights::{LayerWeights, LstmWeights, PeepholeWeights};

/// What runs one folded layer: the GPU's `GpuLstm`s, or the CPU path in tests.
pub(crate) trait FoldedLayers {
    /// Forward of layer `l` (`state`: the variant with the `h_0` input columns).
    fn forward(
        &self,
        l: usize,
        state: bool,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
    ) -> Result<LstmOutput>;
    /// Forward and BPTT of layer `l` from upstream gradients.
    fn forward_backward(
        &self,
        l: usize,
        state: bool,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        up: Upstream,
    ) -> Result<(LstmOutput, Gradients)>;
}

/// Layer `l` of `w` as a one-layer LSTM over `m` (time-major, no peepholes); `state`
/// adds the `D·P` input columns that carry `h_0`.
pub(crate) fn fold_layer(w: &LstmpWeights, l: usize, state: bool) -> Result<LstmWeights> {
    let c = &w.config;
    let (dirs, p) = (c.num_directions(), c.proj_size);
    let extra = if state { dirs * p } else { 0 };
    let config = LstmConfig::new(c.layer_input_size(l) + extra, c.hidden_size)
        .bidirectional(c.bidirectional)
        .bias(c.bias);
    let layers = (0..dirs)
        .map(|d| {
            let lw = &w.layers[w.index(l, d)];
            let w_ih = match state {
                false => lw.w_ih.clone(),
                true => {
                    let zero = Array2::zeros(lw.w_hh.raw_dim());
                    let blocks: Vec<_> = std::iter::once(lw.w_ih.view())
                        .chain((0..dirs).map(|e| if e == d { lw.w_hh.view() } else { zero.view() }))
                        .collect();
                    concatenate(Axis(1), &blocks).expect("every block has 4H rows")
                }
            };
            LayerWeights {
                w_ih,
                w_hh: lw.w_hh.dot(&lw.w_hr),
                b_ih: lw.b_ih.clone(),
                b_hh: lw.b_hh.clone(),
                peephole: PeepholeWeights::None,
            }
        })
        .collect();
    let folded = LstmWeights { config, layers };
    folded.validate()?;
    Ok(folded)
}

/// The first step each direction takes for row `b`.
fn first_step(d: usize, len: usize) -> usize {
    if d == 0 {
        0
    } else {
        len - 1
    }
}

/// `x` `[T, B, I]` with layer `l`'s `h_0` columns appended (see the module header).
fn with_state_columns(x: &Array3<f32>, h0: ArrayView3<f32>, lens: &[usize]) -> Array3<f32> {
    let (t, b, i) = x.dim();
    let (dirs, _, p) = h0.dim();
    let mut out = Array3::zeros((t, b, i + dirs * p));
    out.slice_mut(s![.., .., ..i]).assign(x);
    for d in 0..dirs {
        for (row, &len) in lens.iter().enumerate() {
            let cols = s![first_step(d, len), row, i + d * p..i + (d + 1) * p];
            out.slice_mut(cols).assign(&h0.slice(s![d, row, ..]));
        }
    }
    out
}

/// `[T, B, W]` as `[T·B, W]` rows (a copy when `a` is a strided view).
fn rows(a: ArrayView3<f32>) -> Array2<f32> {
    let (t, b, w) = a.dim();
    let flat = a.as_standard_layout().into_owned();
    flat.into_shape_with_order((t * b, w))
        .expect("standard layout")
}

/// Direction `d`'s `W`-wide block of a `[T, B, D·W]` sequence.
fn block(a: &Array3<f32>, d: usize, width: usize) -> ArrayView3<'_, f32> {
    a.slice(s![.., .., d * width..(d + 1) * width])
}

/// A forward through every layer, time-major.
pub(crate) struct FoldedRun {
    /// `[T, B, D·P]`, `[L·D, B, P]`, `[L·D, B, H]`.
    pub y: Array3<f32>,
    pub h_n: Array3<f32>,
    pub c_n: Array3<f32>,
    /// Each layer's folded input (with the `h_0` columns when `state`), for backward.
    pub inputs: Vec<Array3<f32>>,
    pub state: bool,
}

/// Forward through every layer of `w` from time-major `x`. `state` runs the variant
/// with the `h_0` columns (zeros when `initial` is `None`; training always does, so
/// that `∂h_0` exists).
pub(crate) fn forward(
    run: &impl FoldedLayers,
    w: &LstmpWeights,
    x: Array3<f32>,
    initial: Option<&LstmState>,
    state: bool,
    lens: &[usize],
) -> Result<FoldedRun> {
    let c = &w.config;
    let (dirs, hs, p) = (c.num_directions(), c.hidden_size, c.proj_size);
    let (t, b, _) = x.dim();
    let ld = c.num_layers * dirs;
    let zero_h0 = Array3::zeros((ld, b, p));
    let h0 = initial.map_or(&zero_h0, |s| &s.h);
    let mut fwd = FoldedRun {
        y: x,
        h_n: Array3::zeros((ld, b, p)),
        c_n: Array3::zeros((ld, b, hs)),
        inputs: Vec::new(),
        state,
    };
    for l in 0..c.num_layers {
        let layer = s![l * dirs..(l + 1) * dirs, .., ..];
        let input = match state {
            true => with_state_columns(&fwd.y, h0.slice(layer), lens),
            false => std::mem::take(&mut fwd.y),
        };
        let init = initial.map(|s| LstmState {
            h: Array3::zeros((dirs, b, hs)),
            c: s.c.slice(layer).to_owned(),
        });
        let opts = ForwardOptions {
            initial: init.as_ref(),
            seq_lens: Some(lens),
        };
        let out = run.forward(l, state, input.view(), opts)?;
        fwd.y = Array3::zeros((t, b, dirs * p));
        for d in 0..dirs {
            let w_hr = &w.layers[w.index(l, d)].w_hr;
            let y = rows(block(&out.y, d, hs)).dot(&w_hr.t());
            let y = y.into_shape_with_order((t, b, p)).expect("T·B rows");
            fwd.y.slice_mut(s![.., .., d * p..(d + 1) * p]).assign(&y);
            let m_n = out.h_n.index_axis(Axis(0), d);
            let k = l * dirs + d;
            fwd.h_n
                .index_axis_mut(Axis(0), k)
                .assign(&m_n.dot(&w_hr.t()));
            fwd.c_n
                .index_axis_mut(Axis(0), k)
                .assign(&out.c_n.index_axis(Axis(0), d));
        }
        fwd.inputs.push(input);
    }
    Ok(fwd)
}

/// Parameter, input and initial-state gradients, time-major.
pub(crate) struct FoldedGradients {
    pub params: LstmpWeights,
    pub dx: Array3<f32>,
    pub dh0: Array3<f32>,
    pub dc0: Array3<f32>,
}

/// BPTT of a [`forward`] run with `state` (every layer's forward runs again inside
/// its layer's `forward_backward`). `up.dy` is time-major here.
pub(crate) fn backward(
    run: &impl FoldedLayers,
    w: &LstmpWeights,
    fwd: &FoldedRun,
    initial: Option<&LstmState>,
    lens: &[usize],
    up: Upstream,
) -> Result<FoldedGradients> {
    if !fwd.state {
        return Err(LstmError::Config(
            "an LSTMP backward needs the forward with the h_0 columns".into(),
        ));
    }
    let c = &w.config;
    let (dirs, hs, p) = (c.num_directions(), c.hidden_size, c.proj_size);
    let (t, b, _) = fwd.y.dim();
    let ld = c.num_layers * dirs;
    let mut dy = up
        .dy
        .map_or(Array3::zeros((t, b, dirs * p)), |a| a.to_owned());
    let mut grads = FoldedGradients {
        params: w.clone(),
        dx: Array3::zeros((0, 0, 0)),
        dh0: Array3::zeros((ld, b, p)),
        dc0: Array3::zeros((ld, b, hs)),
    };
    for l in (0..c.num_layers).rev() {
        let layer = s![l * dirs..(l + 1) * dirs, .., ..];
        let (dm, dm_n) = projected_upstream(w, l, &dy, up.dh_n);
        let init = LstmState {
            h: Array3::zeros((dirs, b, hs)),
            c: initial.map_or(Array3::zeros((dirs, b, hs)), |s| {
                s.c.slice(layer).to_owned()
            }),
        };
        let opts = ForwardOptions {
            initial: Some(&init),
            seq_lens: Some(lens),
        };
        let dc_n = up.dc_n.map(|a| a.reborrow().slice_move(layer));
        let layer_up = Upstream {
            dy: Some(dm.view()),
            dh_n: Some(dm_n.view()),
            dc_n,
        };
        let (out, g) = run.forward_backward(l, true, fwd.inputs[l].view(), opts, layer_up)?;
        let i_l = c.layer_input_size(l);
        for d in 0..dirs {
            let k = l * dirs + d;
            let dh_n = up.dh_n.map(|a| a.reborrow().index_axis_move(Axis(0), k));
            let parts = LayerParts {
                w: &w.layers[k],
                g: &g.params.layers[d],
                m: rows(block(&out.y, d, hs)),
                dy: rows(block(&dy, d, p)),
                m_n: out.h_n.index_axis(Axis(0), d),
                dh_n,
                state_cols: i_l + d * p..i_l + (d + 1) * p,
            };
            grads.params.layers[k] = parts.unfold();
            grads
                .dc0
                .index_axis_mut(Axis(0), k)
                .assign(&g.dc0.index_axis(Axis(0), d));
            for (row, &len) in lens.iter().enumerate() {
                let dh =
                    g.dx.slice(s![first_step(d, len), row, i_l + d * p..i_l + (d + 1) * p]);
                grads.dh0.slice_mut(s![k, row, ..]).assign(&dh);
            }
        }
        dy = g.dx.slice(s![.., .., ..i_l]).to_owned();
    }
    grads.dx = dy;
    Ok(grads)
}

/// Layer `l`'s upstream through the projection: `∂m = ∂y W_hr` for every step
/// `[T, B, D·H]`, and `∂m_n = ∂h_n W_hr` `[D, B, H]`.
fn projected_upstream(
    w: &LstmpWeights,
    l: usize,
    dy: &Array3<f32>,
    dh_n: Option<ArrayView3<f32>>,
) -> (Array3<f32>, Array3<f32>) {
    let c = &w.config;
    let (dirs, hs, p) = (c.num_directions(), c.hidden_size, c.proj_size);
    let (t, b, _) = dy.dim();
    let mut dm = Array3::zeros((t, b, dirs * hs));
    let mut dm_n = Array3::zeros((dirs, b, hs));
    for d in 0..dirs {
        let w_hr = &w.layers[w.index(l, d)].w_hr;
        let m = rows(block(dy, d, p)).dot(w_hr);
        let m = m.into_shape_with_order((t, b, hs)).expect("T·B rows");
        dm.slice_mut(s![.., .., d * hs..(d + 1) * hs]).assign(&m);
        if let Some(dh_n) = dh_n {
            let v = dh_n.index_axis(Axis(0), l * dirs + d).dot(w_hr);
            dm_n.index_axis_mut(Axis(0), d).assign(&v);
        }
    }
    (dm, dm_n)
}

/// One layer-direction's gradients in the folded form, and what maps them back.
struct LayerParts<'a> {
    w: &'a LstmpLayerWeights,
    /// The folded LSTM's gradients: `w_hh` is `∂W_eff`.
    g: &'a LayerWeights,
    /// `m_t` and `∂y_t` as `[T·B, H]` and `[T·B, P]` rows; `m_n`, `∂h_n` `[B, ·]`.
    m: Array2<f32>,
    dy: Array2<f32>,
    m_n: ArrayView2<'a, f32>,
    dh_n: Option<ArrayView2<'a, f32>>,
    /// The input columns that carry this direction's `h_0`.
    state_cols: std::ops::Range<usize>,
}

impl LayerParts<'_> {
    fn unfold(&self) -> LstmpLayerWeights {
        let d_eff = &self.g.w_hh;
        let i_l = self.w.w_ih.ncols();
        let d_hh = d_eff.dot(&self.w.w_hr.t()) + self.g.w_ih.slice(s![.., self.state_cols.clone()]);
        let mut d_hr = self.w.w_hh.t().dot(d_eff) + self.dy.t().dot(&self.m);
        if let Some(dh_n) = self.dh_n {
            d_hr += &dh_n.t().dot(&self.m_n);
        }
        LstmpLayerWeights {
            w_ih: self.g.w_ih.slice(s![.., ..i_l]).to_owned(),
            w_hh: d_hh,
            b_ih: self.g.b_ih.clone(),
            b_hh: self.g.b_hh.clone(),
            w_hr: d_hr,
        }
    }
}

#[cfg(test)]
#[path = "lstmp_fold_tests.rs"]
mod tests;

//! Twin of `shaders/lstm_param_grads.wgsl` (the bias and diagonal-peephole gradients),
//! and the weight gradients of one layer-direction that backward assembles from it and
//! the products over all steps.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayView3, Axis};

use super::forward::StepCache;
use super::grad_gemm::transposed_products;
use crate::error::{LstmError, Result};
use crate::weights::{LayerWeights, PeepholeWeights};

/// The weight gradients of one layer-direction from all its steps' `dZ` at once.
pub(crate) fn weight_grads<'a>(
    bias: bool,
    w: &LayerWeights,
    sc: &'a StepCache,
    dz: &Array2<f32>,
    x_flat: ArrayView2<f32>,
) -> Result<LayerWeights> {
    let (rows, h) = (dz.nrows(), dz.ncols() / 4);
    let flat = |a: ArrayView3<'a, f32>| a.into_shape_with_order((rows, h)).expect("contiguous");
    let (h_prev, c_prev) = (flat(sc.h_prev.view()), flat(sc.c_prev.view()));
    let gates = sc
        .gates
        .view()
        .into_shape_with_order((rows, 4 * h))
        .expect("contiguous");
    let diagonal = matches!(w.peephole, PeepholeWeights::Diagonal(_));
    let (db, dp) = lstm_param_grads(dz.view(), gates, c_prev.view(), diagonal)?;
    let full = matches!(w.peephole, PeepholeWeights::Full(_));
    let rights = [x_flat.view(), h_prev.view(), c_prev.view()];
    let mut products = transposed_products(dz.view(), &rights[..2 + full as usize]).into_iter();
    let (w_ih, w_hh) = (products.next(), products.next());
    let peephole = match (&w.peephole, dp) {
        (PeepholeWeights::Full(_), _) => PeepholeWeights::Full(products.next().expect("dW_ch")),
        (PeepholeWeights::Diagonal(_), Some(p)) => PeepholeWeights::Diagonal(p),
        _ => PeepholeWeights::None,
    };
    let (b_ih, b_hh) = if bias {
        (Some(db.clone()), Some(db))
    } else {
        (None, None)
    };
    Ok(LayerWeights {
        w_ih: w_ih.expect("dW_ih"),
        w_hh: w_hh.expect("dW_hh"),
        b_ih,
        b_hh,
        peephole,
    })
}

/// Twin of `shaders/lstm_param_grads.wgsl`: the parameter gradients that are sums over
/// all rows, not products. `dz`, `gates` `[R, 4H]` (i, f, g, o blocks), `c_prev` `[R, H]`.
/// Returns `db = Σ dz` `[4H]` and, when `diagonal`, the peephole gradients `[3H]`
/// (`Σ dz_i⊙c_{t-1}`, `Σ dz_f⊙c_{t-1}`, `Σ dz_o⊙c_t` with `c_t = f⊙c_{t-1} + i⊙g`).
pub fn lstm_param_grads(
    dz: ArrayView2<f32>,
    gates: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    diagonal: bool,
) -> Result<(Array1<f32>, Option<Array1<f32>>)> {
    let (rows, h) = c_prev.dim();
    if dz.dim() != (rows, 4 * h) || gates.dim() != (rows, 4 * h) {
        return Err(LstmError::shape(
            "lstm_param_grads dz / gates / c_prev",
            format!("[R, 4H] / [R, 4H] / [R, H] with R = {rows}, H = {h}"),
            format!(
                "{:?} / {:?} / {:?}",
                dz.shape(),
                gates.shape(),
                c_prev.shape()
            ),
        ));
    }
    let db: Array1<f32> = dz.sum_axis(Axis(0));
    if !diagonal {
        return Ok((db, None));
    }
    let gate = |q: usize| gates.slice(s![.., q * h..(q + 1) * h]).to_owned();
    let c_new = &gate(1) * &c_prev + &gate(0) * &gate(2);
    let dzq = |q: usize| dz.slice(s![.., q * h..(q + 1) * h]).to_owned();
    let mut p = Array1::zeros(3 * h);
    p.slice_mut(s![..h])
        .assign(&(&dzq(0) * &c_prev).sum_axis(Axis(0)));
    p.slice_mut(s![h..2 * h])
        .assign(&(&dzq(1) * &c_prev).sum_axis(Axis(0)));
    p.slice_mut(s![2 * h..])
        .assign(&(&dzq(3) * &c_new).sum_axis(Axis(0)));
    Ok((db, Some(p)))
}

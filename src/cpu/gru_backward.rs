//! BPTT through a GRU: per layer from the top, per direction, [`gru_step_backward`]
//! per time step in reverse order, then the parameter sums and `∂x` as GEMMs over all
//! steps at once.

use ndarray::{s, Array1, Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::gru::GruCache;
use super::gru_step::{gru_step_backward, n_operand};
use crate::error::{LstmError, Result};
use crate::gru::{GruLayerWeights, GruWeights};
use crate::sequence::{from_time_major, to_time_major};

/// `∂L` by every parameter and input of a GRU forward.
#[derive(Clone, Debug, PartialEq)]
pub struct GruGradients {
    /// Same layout as the weights.
    pub params: GruWeights,
    /// `∂L/∂x` in the caller's layout.
    pub dx: Array3<f32>,
    /// `∂L/∂h_0`, `[L·D, B, H]`.
    pub dh0: Array3<f32>,
}

/// What flows into the GRU from above; `None` is zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct GruUpstream<'a> {
    /// `∂L/∂y` in the caller's layout.
    pub dy: Option<ArrayView3<'a, f32>>,
    /// `∂L/∂h_n`, `[L·D, B, H]`.
    pub dh_n: Option<ArrayView3<'a, f32>>,
}

/// Gradients of the forward that filled `cache` (by [`super::gru_forward_train`]).
pub fn gru_backward(
    weights: &GruWeights,
    cache: &GruCache,
    up: GruUpstream,
) -> Result<GruGradients> {
    weights.validate()?;
    let cfg = &weights.config;
    let (hs, dirs) = (cfg.hidden_size, cfg.num_directions());
    let Some(first) = cache.layer_inputs.first() else {
        return Err(LstmError::shape(
            "GRU cache",
            "a training forward's cache",
            "empty",
        ));
    };
    let (t_len, b, _) = first.dim();
    let state = [cfg.num_layers * dirs, b, hs];
    let mut dy = match up.dy {
        Some(dy) => {
            let dy = to_time_major(&cfg.layout(), &dy);
            if dy.shape() != [t_len, b, dirs * hs] {
                return Err(LstmError::shape(
                    "dy",
                    format!("{:?}", [t_len, b, dirs * hs]),
                    format!("{:?}", dy.shape()),
                ));
            }
            dy
        }
        None => Array3::zeros((t_len, b, dirs * hs)),
    };
    if let Some(d) = up.dh_n.filter(|d| d.shape() != state) {
        return Err(LstmError::shape(
            "dh_n",
            format!("{state:?}"),
            format!("{:?}", d.shape()),
        ));
    }
    let mut params = weights.clone();
    let mut dh0 = Array3::zeros(state);
    for l in (0..cfg.num_layers).rev() {
        let x = &cache.layer_inputs[l];
        let mut dx = Array3::<f32>::zeros(x.raw_dim());
        for d in 0..dirs {
            let ld = weights.index(l, d);
            let dh_n = up.dh_n.map(|a| a.index_axis(Axis(0), ld).to_owned());
            let run = DirectionGrads {
                w: &weights.layers[ld],
                reset_after: cfg.reset_after,
                reverse: d == 1,
                lens: &cache.lens,
                gates: &cache.gates[ld],
                h_prev: &cache.h_prev[ld],
            };
            let dy_d = dy.slice(s![.., .., d * hs..(d + 1) * hs]);
            let (grads, dh) = run.backward(
                x,
                dy_d,
                dh_n.unwrap_or_else(|| Array2::zeros((b, hs))),
                &mut dx,
            );
            params.layers[ld] = grads;
            dh0.index_axis_mut(Axis(0), ld).assign(&dh);
        }
        dy = dx;
    }
    Ok(GruGradients {
        params,
        dx: from_time_major(&cfg.layout(), dy),
        dh0,
    })
}

/// One layer-direction's backward over the cached forward.
struct DirectionGrads<'a> {
    w: &'a GruLayerWeights,
    reset_after: bool,
    reverse: bool,
    lens: &'a [usize],
    gates: &'a Array3<f32>,
    h_prev: &'a Array3<f32>,
}

impl DirectionGrads<'_> {
    /// Walks the steps backwards from `dh` (`∂L/∂h_n`), adds `∂L/∂x` into `dx`, and
    /// returns the parameter gradients and `∂L/∂h_0`.
    fn backward(
        &self,
        x: &Array3<f32>,
        dy: ArrayView3<f32>,
        mut dh: Array2<f32>,
        dx: &mut Array3<f32>,
    ) -> (GruLayerWeights, Array2<f32>) {
        let (t_len, b, i) = x.dim();
        let hs = dh.ncols();
        let mut dgx = Array3::<f32>::zeros((t_len, b, 3 * hs));
        let mut dgh = Array3::<f32>::zeros((t_len, b, 3 * hs));
        let mut operand_n = Array3::<f32>::zeros((t_len, b, hs));
        for s in 0..t_len {
            // Backwards through the direction's own order: the reverse direction ran T-1 … 0.
            let t = if self.reverse { s } else { t_len - 1 - s };
            let active: Vec<bool> = self.lens.iter().map(|&n| t < n).collect();
            let total = &dh + &dy.index_axis(Axis(0), t);
            let gates = self.gates.index_axis(Axis(0), t);
            let h_prev = self.h_prev.index_axis(Axis(0), t);
            let g = gru_step_backward(
                total.view(),
                gates,
                h_prev,
                self.w.w_hh.view(),
                self.reset_after,
            );
            operand_n.index_axis_mut(Axis(0), t).assign(&n_operand(
                gates,
                h_prev,
                self.reset_after,
            ));
            // Past its length a row's state passes through untouched.
            for (row, _) in active.iter().enumerate().filter(|(_, &on)| on) {
                dh.row_mut(row).assign(&g.dh_prev.row(row));
                dgx.slice_mut(s![t, row, ..]).assign(&g.dgx.row(row));
                dgh.slice_mut(s![t, row, ..]).assign(&g.dgh.row(row));
            }
        }
        let flat = |a: &Array3<f32>, w: usize| {
            a.view()
                .into_shape_with_order((t_len * b, w))
                .expect("contiguous")
                .to_owned()
        };
        let (dgx, dgh) = (flat(&dgx, 3 * hs), flat(&dgh, 3 * hs));
        let xs = flat(x, i);
        let mut dxs = dx
            .view_mut()
            .into_shape_with_order((t_len * b, i))
            .expect("contiguous");
        dxs += &dgx.dot(&self.w.w_ih);
        let grads = self.param_grads(
            dgx.view(),
            dgh.view(),
            xs.view(),
            flat(self.h_prev, hs).view(),
            flat(&operand_n, hs).view(),
        );
        (grads, dh)
    }

    /// Sums over all steps: `∂W_ih = dGxᵀ X`, `∂W_hh` (rows r, z from `h_{t-1}`, rows n
    /// from `n`'s operand), and the biases.
    fn param_grads(
        &self,
        dgx: ArrayView2<f32>,
        dgh: ArrayView2<f32>,
        xs: ArrayView2<f32>,
        h_prev: ArrayView2<f32>,
        operand_n: ArrayView2<f32>,
    ) -> GruLayerWeights {
        let hs = h_prev.ncols();
        let mut w_hh = Array2::zeros((3 * hs, hs));
        w_hh.slice_mut(s![..2 * hs, ..])
            .assign(&dgh.slice(s![.., ..2 * hs]).t().dot(&h_prev));
        w_hh.slice_mut(s![2 * hs.., ..])
            .assign(&dgh.slice(s![.., 2 * hs..]).t().dot(&operand_n));
        let sum = |a: ArrayView2<f32>| -> Array1<f32> { a.sum_axis(Axis(0)) };
        GruLayerWeights {
            w_ih: dgx.t().dot(&xs),
            w_hh,
            b_ih: self.w.b_ih.as_ref().map(|_| sum(dgx)),
            b_hh: self.w.b_hh.as_ref().map(|_| sum(dgh)),
        }
    }
}

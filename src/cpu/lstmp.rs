//! The LSTM with a projection (`crate::lstmp`) on the CPU: the sequence forward and its
//! BPTT, readable ndarray code (the step is the LSTM's cell followed by `h = W_hr m`).

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::projection::Projection;
use super::reference::sigmoid;
use super::Upstream;
use crate::error::{LstmError, Result};
use crate::lstmp::{check_lstmp_inputs, LstmpConfig, LstmpLayerWeights, LstmpOutput, LstmpWeights};
use crate::sequence::{from_time_major, to_time_major, ForwardOptions};

/// What the forward of one layer-direction keeps for backward, per step `[T, B, ·]`.
#[derive(Clone, Debug, Default)]
pub struct LstmpStepCache {
    /// i, f, g, o `[T, B, 4H]` (0 past a length), `h_{t-1}` `[T, B, P]`, `c_{t-1}` and
    /// `m = o ⊙ tanh c_t` `[T, B, H]`.
    pub gates: Array3<f32>,
    pub h_prev: Array3<f32>,
    pub c_prev: Array3<f32>,
    pub m: Array3<f32>,
}

/// What a training forward keeps: each layer's input and each layer-direction's steps.
#[derive(Clone, Debug, Default)]
pub struct LstmpCache {
    pub layer_inputs: Vec<Array3<f32>>,
    pub steps: Vec<LstmpStepCache>,
    pub lens: Vec<usize>,
}

/// `∂L` by every parameter, the input and the initial state.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmpGradients {
    pub params: LstmpWeights,
    pub dx: Array3<f32>,
    pub dh0: Array3<f32>,
    pub dc0: Array3<f32>,
}

/// Full sequence forward: layers, both directions, initial state, lengths.
pub fn lstmp_forward(
    w: &LstmpWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<LstmpOutput> {
    Ok(lstmp_forward_train(w, x, opts)?.0)
}

/// [`lstmp_forward`] and what [`lstmp_backward`] needs.
pub fn lstmp_forward_train(
    w: &LstmpWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<(LstmpOutput, LstmpCache)> {
    w.validate()?;
    let cfg = &w.config;
    let dims = check_lstmp_inputs(cfg, &x, &opts)?;
    let (t, b, dirs) = (dims.t, dims.b, cfg.num_directions());
    let (hs, p) = (cfg.hidden_size, cfg.proj_size);
    let lens = opts.seq_lens.map(<[usize]>::to_vec).unwrap_or(vec![t; b]);
    let ld = cfg.num_layers * dirs;
    let (mut h_n, mut c_n) = (Array3::zeros((ld, b, p)), Array3::zeros((ld, b, hs)));
    let mut cache = LstmpCache {
        lens: lens.clone(),
        ..Default::default()
    };
    let mut layer_in = to_time_major(&cfg.layout(), &x);
    for l in 0..cfg.num_layers {
        let mut layer_out = Array3::zeros((t, b, dirs * p));
        for d in 0..dirs {
            let k = w.index(l, d);
            let (mut h, mut c) = match opts.initial {
                Some(s) => (
                    s.h.index_axis(Axis(0), k).to_owned(),
                    s.c.index_axis(Axis(0), k).to_owned(),
                ),
                None => (Array2::zeros((b, p)), Array2::zeros((b, hs))),
            };
            let out = layer_out.slice_mut(s![.., .., d * p..(d + 1) * p]);
            let steps = run_direction(
                &w.layers[k],
                &layer_in,
                (&mut h, &mut c),
                out,
                d == 1,
                &lens,
            );
            h_n.index_axis_mut(Axis(0), k).assign(&h);
            c_n.index_axis_mut(Axis(0), k).assign(&c);
            cache.steps.push(steps);
        }
        cache
            .layer_inputs
            .push(std::mem::replace(&mut layer_in, layer_out));
    }
    let y = from_time_major(&cfg.layout(), layer_in);
    Ok((LstmpOutput { y, h_n, c_n }, cache))
}

/// Steps of one layer-direction in its order (reverse: T-1 … 0), from `(h, c)` (left
/// holding the final state), writing `h_t` into `out` for live rows.
fn run_direction(
    w: &LstmpLayerWeights,
    x: &Array3<f32>,
    (h, c): (&mut Array2<f32>, &mut Array2<f32>),
    mut out: ndarray::ArrayViewMut3<f32>,
    reverse: bool,
    lens: &[usize],
) -> LstmpStepCache {
    let (t_len, b, _) = x.dim();
    let hs = c.ncols();
    let mut bias = ndarray::Array1::<f32>::zeros(4 * hs);
    for v in [&w.b_ih, &w.b_hh].into_iter().flatten() {
        bias += v;
    }
    let mut k = LstmpStepCache {
        gates: Array3::zeros((t_len, b, 4 * hs)),
        h_prev: Array3::zeros((t_len, b, h.ncols())),
        c_prev: Array3::zeros((t_len, b, hs)),
        m: Array3::zeros((t_len, b, hs)),
    };
    // The input projection, hoisted out of the recurrence as in the LSTM's schedule.
    let mut gx = Projection::new(x.view(), w.w_ih.view(), bias);
    for s in 0..t_len {
        let t = if reverse { t_len - 1 - s } else { s };
        let z = &gx.at(t) + &h.dot(&w.w_hh.t());
        let gates = activate(z.view());
        let block = |g: usize| gates.slice(s![.., g * hs..(g + 1) * hs]);
        let c_new = &block(1) * &*c + &block(0) * &block(2);
        let m = &block(3) * &c_new.mapv(f32::tanh);
        let h_new = m.dot(&w.w_hr.t());
        k.h_prev.index_axis_mut(Axis(0), t).assign(h);
        k.c_prev.index_axis_mut(Axis(0), t).assign(c);
        for (row, _) in lens.iter().enumerate().filter(|(_, &n)| t < n) {
            k.gates.slice_mut(s![t, row, ..]).assign(&gates.row(row));
            k.m.slice_mut(s![t, row, ..]).assign(&m.row(row));
            h.row_mut(row).assign(&h_new.row(row));
            c.row_mut(row).assign(&c_new.row(row));
            out.slice_mut(s![t, row, ..]).assign(&h_new.row(row));
        }
    }
    k
}

/// σ, σ, tanh, σ over the i, f, g, o blocks of `z` `[B, 4H]`.
fn activate(z: ArrayView2<f32>) -> Array2<f32> {
    let hs = z.ncols() / 4;
    let mut g = z.to_owned();
    for ((_, q), v) in g.indexed_iter_mut() {
        *v = if q / hs == 2 { v.tanh() } else { sigmoid(*v) };
    }
    g
}

/// Gradients of the forward that filled `cache`; `up.dy` in the caller's layout.
pub fn lstmp_backward(
    w: &LstmpWeights,
    cache: &LstmpCache,
    up: Upstream,
) -> Result<LstmpGradients> {
    w.validate()?;
    let cfg = &w.config;
    let Some(first) = cache.layer_inputs.first() else {
        return Err(LstmError::shape(
            "LSTMP cache",
            "a training forward's cache",
            "empty",
        ));
    };
    let (t, b, _) = first.dim();
    let (dirs, hs, p) = (cfg.num_directions(), cfg.hidden_size, cfg.proj_size);
    let ld = cfg.num_layers * dirs;
    check_lstmp_upstream(cfg, &up, t, b)?;
    let mut dy = match up.dy {
        Some(dy) => to_time_major(&cfg.layout(), &dy),
        None => Array3::zeros((t, b, dirs * p)),
    };
    let mut params = w.clone();
    let (mut dh0, mut dc0) = (Array3::zeros((ld, b, p)), Array3::zeros((ld, b, hs)));
    for l in (0..cfg.num_layers).rev() {
        let x = &cache.layer_inputs[l];
        let mut dx = Array3::<f32>::zeros(x.raw_dim());
        for d in 0..dirs {
            let k = w.index(l, d);
            let carry = (
                up.dh_n.map_or(Array2::zeros((b, p)), |a| {
                    a.index_axis(Axis(0), k).to_owned()
                }),
                up.dc_n.map_or(Array2::zeros((b, hs)), |a| {
                    a.index_axis(Axis(0), k).to_owned()
                }),
            );
            let dy_d = dy.slice(s![.., .., d * p..(d + 1) * p]);
            let run = BackwardRun {
                w: &w.layers[k],
                steps: &cache.steps[k],
                lens: &cache.lens,
                reverse: d == 1,
            };
            let (g, (dh, dc)) = run.backward(x, dy_d, carry, &mut dx);
            params.layers[k] = g;
            dh0.index_axis_mut(Axis(0), k).assign(&dh);
            dc0.index_axis_mut(Axis(0), k).assign(&dc);
        }
        dy = dx;
    }
    Ok(LstmpGradients {
        params,
        dx: from_time_major(&cfg.layout(), dy),
        dh0,
        dc0,
    })
}

/// Checks `∂y` (the caller's layout), `∂h_n` and `∂c_n` against a `T`-step, `B`-row run.
pub(crate) fn check_lstmp_upstream(
    cfg: &LstmpConfig,
    up: &Upstream,
    t: usize,
    b: usize,
) -> Result<()> {
    let (dirs, hs, p) = (cfg.num_directions(), cfg.hidden_size, cfg.proj_size);
    let ld = cfg.num_layers * dirs;
    let dy_want = match cfg.batch_first {
        true => vec![b, t, dirs * p],
        false => vec![t, b, dirs * p],
    };
    let shapes = (up
        .dy
        .map(|a| ("dy", a.shape().to_vec(), dy_want))
        .into_iter())
    .chain(
        up.dh_n
            .map(|a| ("dh_n", a.shape().to_vec(), vec![ld, b, p])),
    )
    .chain(
        up.dc_n
            .map(|a| ("dc_n", a.shape().to_vec(), vec![ld, b, hs])),
    );
    for (name, got, want) in shapes {
        if got != want {
            return Err(LstmError::shape(
                name,
                format!("{want:?}"),
                format!("{got:?}"),
            ));
        }
    }
    Ok(())
}

struct BackwardRun<'a> {
    w: &'a LstmpLayerWeights,
    steps: &'a LstmpStepCache,
    lens: &'a [usize],
    reverse: bool,
}

impl BackwardRun<'_> {
    /// Walks the steps backwards from `(dh, dc)`, adds `∂x` into `dx`; returns the
    /// parameter gradients and `(∂h_0, ∂c_0)`.
    fn backward(
        &self,
        x: &Array3<f32>,
        dy: ArrayView3<f32>,
        (mut dh, mut dc): (Array2<f32>, Array2<f32>),
        dx: &mut Array3<f32>,
    ) -> (LstmpLayerWeights, (Array2<f32>, Array2<f32>)) {
        let (t_len, b, _) = x.dim();
        let hs = dc.ncols();
        let mut dz_all = Array3::<f32>::zeros((t_len, b, 4 * hs));
        let mut totals = Array3::<f32>::zeros((t_len, b, dh.ncols()));
        for s in 0..t_len {
            let t = if self.reverse { s } else { t_len - 1 - s };
            let total = &dh + &dy.index_axis(Axis(0), t);
            let g = self.steps.gates.index_axis(Axis(0), t);
            let block = |k: usize| g.slice(s![.., k * hs..(k + 1) * hs]);
            let (i, f, gg, o) = (block(0), block(1), block(2), block(3));
            let c_prev = self.steps.c_prev.index_axis(Axis(0), t);
            let tc = (&f * &c_prev + &i * &gg).mapv(f32::tanh);
            let dm = total.dot(&self.w.w_hr);
            totals.index_axis_mut(Axis(0), t).assign(&total);
            let dct = &dc + &(&dm * &o * &tc.mapv(|v| 1.0 - v * v));
            let dz = ndarray::concatenate![
                Axis(1),
                &dct * &gg * &i.mapv(|v| v * (1.0 - v)),
                &dct * &c_prev * &f.mapv(|v| v * (1.0 - v)),
                &dct * &i * &gg.mapv(|v| 1.0 - v * v),
                &dm * &tc * &o.mapv(|v| v * (1.0 - v))
            ];
            let dh_prev = dz.dot(&self.w.w_hh);
            let dc_prev = &dct * &f;
            for (row, _) in self.lens.iter().enumerate().filter(|(_, &n)| t < n) {
                // Past its length a row's state passed through untouched: its carry too.
                dz_all.slice_mut(s![t, row, ..]).assign(&dz.row(row));
                dh.row_mut(row).assign(&dh_prev.row(row));
                dc.row_mut(row).assign(&dc_prev.row(row));
            }
        }
        let flat = |a: &Array3<f32>| {
            let (t, b, w) = a.dim();
            a.view()
                .into_shape_with_order((t * b, w))
                .expect("contiguous")
                .to_owned()
        };
        let (dz, xs, hp) = (flat(&dz_all), flat(x), flat(&self.steps.h_prev));
        let mut dxs = dx
            .view_mut()
            .into_shape_with_order((t_len * b, x.dim().2))
            .expect("contiguous");
        dxs += &dz.dot(&self.w.w_ih);
        let db = dz.sum_axis(Axis(0));
        // ∂W_hr = Σ_t ∂h_tᵀ m_t in one GEMM (m is 0 past a length, so idle rows add nothing).
        let d_hr = flat(&totals).t().dot(&flat(&self.steps.m));
        let grads = LstmpLayerWeights {
            w_ih: dz.t().dot(&xs),
            w_hh: dz.t().dot(&hp),
            b_ih: self.w.b_ih.as_ref().map(|_| db.clone()),
            b_hh: self.w.b_hh.as_ref().map(|_| db.clone()),
            w_hr: d_hr,
        };
        (grads, (dh, dc))
    }
}

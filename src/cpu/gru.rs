//! The CPU GRU over a whole sequence: the hoisted input projection, then one
//! [`gru_step`](super::gru_step()) per time step for every layer and direction (the LSTM's schedule, see
//! `forward.rs`). Optionally keeps what [`super::gru_backward()`] needs.

use std::ops::Range;

use ndarray::{s, Array2, Array3, ArrayView3, Axis, Zip};

use super::gru_fast::GruStepper;
use super::gru_step::input_bias;
use super::projection::{packing_pays, Projection};
use crate::error::Result;
use crate::gru::{check_gru_inputs, GruLayerWeights, GruOptions, GruOutput, GruWeights};
use crate::sequence::{from_time_major, to_time_major};

/// What a training forward keeps for backward.
#[derive(Clone, Debug, Default)]
pub struct GruCache {
    /// Input of each layer, time-major `[T, B, I_l]`.
    pub layer_inputs: Vec<Array3<f32>>,
    /// Per layer-direction (`l·D + d`): `[T, B, 4H]` step gates (r, z, n, a; see
    /// `gru_step`), zero past a length.
    pub gates: Vec<Array3<f32>>,
    /// Per layer-direction: `[T, B, H]` `h_{t-1}`.
    pub h_prev: Vec<Array3<f32>>,
    pub lens: Vec<usize>,
}

/// Full sequence forward for any config: stacked layers, both directions, initial
/// state, variable lengths. Returns PyTorch's `(output, h_n)`.
pub fn gru_forward(
    weights: &GruWeights,
    x: ArrayView3<f32>,
    opts: GruOptions,
) -> Result<GruOutput> {
    gru_forward_impl(weights, x, opts, None)
}

/// [`gru_forward`] that also returns what [`super::gru_backward()`] needs.
pub fn gru_forward_train(
    weights: &GruWeights,
    x: ArrayView3<f32>,
    opts: GruOptions,
) -> Result<(GruOutput, GruCache)> {
    let mut cache = GruCache::default();
    let out = gru_forward_impl(weights, x, opts, Some(&mut cache))?;
    Ok((out, cache))
}

fn gru_forward_impl(
    weights: &GruWeights,
    x: ArrayView3<f32>,
    opts: GruOptions,
    mut cache: Option<&mut GruCache>,
) -> Result<GruOutput> {
    let cfg = &weights.config;
    weights.validate()?;
    let dims = check_gru_inputs(cfg, &x, &opts)?;
    let (t_len, b, hs) = (dims.t, dims.b, cfg.hidden_size);
    let lens = opts
        .seq_lens
        .map(<[usize]>::to_vec)
        .unwrap_or(vec![t_len; b]);
    let dirs = cfg.num_directions();
    let mut h_n = Array3::zeros((cfg.num_layers * dirs, b, hs));
    let mut layer_in = to_time_major(&cfg.layout(), &x);
    if let Some(c) = cache.as_deref_mut() {
        *c = GruCache {
            lens: lens.clone(),
            ..Default::default()
        };
    }
    for l in 0..cfg.num_layers {
        let mut layer_out = Array3::<f32>::zeros((t_len, b, cfg.output_size()));
        for d in 0..dirs {
            let ld = weights.index(l, d);
            let mut h = match opts.initial {
                Some(h0) => h0.index_axis(Axis(0), ld).to_owned(),
                None => Array2::zeros((b, hs)),
            };
            let run = GruDirection {
                w: &weights.layers[ld],
                reset_after: cfg.reset_after,
                reverse: d == 1,
                lens: &lens,
            };
            let out = layer_out.slice_mut(s![.., .., d * hs..(d + 1) * hs]);
            let kept = run.forward(&layer_in, &mut h, out, cache.is_some());
            h_n.index_axis_mut(Axis(0), ld).assign(&h);
            if let (Some(c), Some((gates, h_prev))) = (cache.as_deref_mut(), kept) {
                c.gates.push(gates);
                c.h_prev.push(h_prev);
            }
        }
        if let Some(c) = cache.as_deref_mut() {
            c.layer_inputs.push(layer_in);
        }
        layer_in = layer_out;
    }
    Ok(GruOutput {
        y: from_time_major(&cfg.layout(), layer_in),
        h_n,
    })
}

/// Whether a layer-direction of `t_len` steps of `b` rows through `w` runs by batch
/// halves, as the LSTM's does (`batch_split`): two threads free, enough rows, weights
/// each thread can stream, and halves that take the whole's kernels (the packed
/// recurrent products, the same projection packing), so the same bits.
fn by_batch_halves(w: &GruLayerWeights, t_len: usize, b: usize) -> bool {
    let packs = |rows: usize| packing_pays(t_len * rows);
    super::batch_split::splits(b, 4 * w.w_hh.len(), |r| packs(r.len()) == packs(b))
}

/// One layer-direction of the forward.
#[derive(Clone, Copy)]
pub(crate) struct GruDirection<'a> {
    pub w: &'a GruLayerWeights,
    pub reset_after: bool,
    pub reverse: bool,
    pub lens: &'a [usize],
}

impl GruDirection<'_> {
    /// Runs every step over `layer_in` `[T, B, I]` from `h` (left holding the final
    /// state), writing `h_t` into `out` `[T, B, H]` for live rows. With `keep`, returns
    /// the step gates `[T, B, 4H]` and `h_{t-1}` `[T, B, H]`. On two threads by batch
    /// halves where [`by_batch_halves`] says.
    pub fn forward(
        &self,
        layer_in: &Array3<f32>,
        h: &mut Array2<f32>,
        out: ndarray::ArrayViewMut3<f32>,
        keep: bool,
    ) -> Option<(Array3<f32>, Array3<f32>)> {
        let (t_len, b, _) = layer_in.dim();
        match by_batch_halves(self.w, t_len, b) {
            true => self.forward_by_batch_halves(layer_in, h, out, keep),
            false => self.forward_rows(layer_in, h, out, keep),
        }
    }

    /// [`GruDirection::forward`], each batch half on its own thread for the whole
    /// sequence (the LSTM's `batch_split`): the halves' final states and kept arrays
    /// joined after.
    fn forward_by_batch_halves(
        &self,
        layer_in: &Array3<f32>,
        h: &mut Array2<f32>,
        out: ndarray::ArrayViewMut3<f32>,
        keep: bool,
    ) -> Option<(Array3<f32>, Array3<f32>)> {
        use super::batch_split::{halves, join_rows, rows_of};
        let [top, bottom] = halves(h.nrows());
        let (out_top, out_bottom) = out.split_at(Axis(1), top.end);
        let state = &*h;
        let run = |rows: Range<usize>, out| {
            // The half's input, contiguous as the projection wants it.
            let x = layer_in.slice(s![.., rows.clone(), ..]).to_owned();
            let mut h = rows_of(state, &rows);
            let half = GruDirection {
                lens: &self.lens[rows],
                ..*self
            };
            let kept = half.forward_rows(&x, &mut h, out, keep);
            (h, kept)
        };
        let ((h0, k0), (h1, k1)) =
            super::threads::join(true, || run(top, out_top), || run(bottom, out_bottom));
        join_rows(h, [h0, h1]);
        let ((g0, p0), (g1, p1)) = (k0?, k1?);
        let join = |a: Array3<f32>, b: Array3<f32>| {
            ndarray::concatenate(Axis(1), &[a.view(), b.view()]).expect("halves of one batch")
        };
        Some((join(g0, g1), join(p0, p1)))
    }

    /// [`GruDirection::forward`] on this thread.
    fn forward_rows(
        &self,
        layer_in: &Array3<f32>,
        h: &mut Array2<f32>,
        mut out: ndarray::ArrayViewMut3<f32>,
        keep: bool,
    ) -> Option<(Array3<f32>, Array3<f32>)> {
        let (t_len, b, _) = layer_in.dim();
        let hs = h.ncols();
        let bias = input_bias(self.w, self.reset_after);
        let mut gx = Projection::new(layer_in.view(), self.w.w_ih.view(), bias);
        let mut stepper = GruStepper::new(self.w, self.reset_after, b);
        let mut h_new = Array2::zeros((b, hs));
        let mut kept = keep.then(|| {
            (
                Array3::zeros((t_len, b, 4 * hs)),
                Array3::zeros((t_len, b, hs)),
            )
        });
        for s in 0..t_len {
            // The reverse direction walks t = T-1 … 0; a row is idle while t ≥ its length.
            let t = if self.reverse { t_len - 1 - s } else { s };
            let gates = kept.as_mut().map(|(g, _)| g.index_axis_mut(Axis(0), t));
            stepper.step(gx.at(t), h.view(), h_new.view_mut(), gates);
            if let Some((_, hp)) = kept.as_mut() {
                hp.index_axis_mut(Axis(0), t).assign(h);
            }
            Zip::from(h.rows_mut())
                .and(out.index_axis_mut(Axis(0), t).rows_mut())
                .and(h_new.rows())
                .and(self.lens)
                .for_each(|mut hr, mut o, new, &n| {
                    if t < n {
                        hr.assign(&new);
                        o.assign(&new);
                    }
                });
            if let Some((g, _)) = kept.as_mut() {
                for (row, &n) in self.lens.iter().enumerate() {
                    if t >= n {
                        g.slice_mut(s![t, row, ..]).fill(0.0);
                    }
                }
            }
        }
        kept
    }
}

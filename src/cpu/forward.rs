//! The CPU forward over a whole sequence: hoisted input projection, then one step per
//! time step for every layer and direction, the step run in place by `simd` (the same
//! math as [`super::lstm_step`]). Optionally keeps what backward needs.

use ndarray::{s, Array2, Array3, ArrayView3, ArrayViewMut3, Axis};

use super::aligned;
use super::packs::LayerPacks;
use super::panel_matvec::Walk;
use super::simd;
use super::step_output::{new_output, write_step_output, Output};
use crate::error::Result;
use crate::sequence::{
    check_inputs, from_time_major, lengths, time_major, zero_state, ForwardOptions, LstmOutput,
};
use crate::weights::{LayerWeights, LstmWeights};

/// What a training forward keeps for backward.
#[derive(Clone, Debug, Default)]
pub struct ForwardCache {
    /// Input of each layer, time-major `[T, B, I_l]`.
    pub layer_inputs: Vec<Array3<f32>>,
    /// Per layer-direction (`l·D + d`).
    pub steps: Vec<StepCache>,
    pub lens: Vec<usize>,
}

/// Per time step of one layer-direction: gate activations and the previous state.
#[derive(Clone, Debug, Default)]
pub struct StepCache {
    /// `[T, B, 4H]` (i, f, g, o blocks), zero where a sequence is past its length.
    pub gates: Array3<f32>,
    /// `[T, B, H]` each: `h_{t-1}` and `c_{t-1}`.
    pub h_prev: Array3<f32>,
    pub c_prev: Array3<f32>,
}

impl StepCache {
    fn new(t: usize, b: usize, h: usize, keep: bool) -> Self {
        if !keep {
            return StepCache::default();
        }
        StepCache {
            gates: aligned::zeros((t, b, 4 * h)),
            h_prev: aligned::zeros((t, b, h)),
            c_prev: aligned::zeros((t, b, h)),
        }
    }
    /// Its arrays as [`CacheRows`]; `None` when it keeps nothing (inference).
    fn rows(&mut self) -> Option<CacheRows<'_>> {
        (!self.gates.is_empty()).then(|| CacheRows {
            gates: self.gates.view_mut(),
            h_prev: self.h_prev.view_mut(),
            c_prev: self.c_prev.view_mut(),
        })
    }
}

/// The batch rows of a [`StepCache`] that one forward writes: all of them, or a batch
/// half's (`super::batch_split`).
struct CacheRows<'a> {
    gates: ArrayViewMut3<'a, f32>,
    h_prev: ArrayViewMut3<'a, f32>,
    c_prev: ArrayViewMut3<'a, f32>,
}

impl<'a> CacheRows<'a> {
    /// The rows before `mid`, and the rest.
    fn split(self, mid: usize) -> [CacheRows<'a>; 2] {
        let (g0, g1) = self.gates.split_at(Axis(1), mid);
        let (h0, h1) = self.h_prev.split_at(Axis(1), mid);
        let (c0, c1) = self.c_prev.split_at(Axis(1), mid);
        [(g0, h0, c0), (g1, h1, c1)].map(|(gates, h_prev, c_prev)| CacheRows {
            gates,
            h_prev,
            c_prev,
        })
    }

    fn keep_prev(&mut self, t: usize, h: &Array2<f32>, c: &Array2<f32>) {
        self.h_prev.index_axis_mut(Axis(0), t).assign(h);
        self.c_prev.index_axis_mut(Axis(0), t).assign(c);
    }

    /// Gate activations of step `t` from the step's pre-activations `z` and new `c`.
    fn keep_gates_from(
        &mut self,
        t: usize,
        z: &Array2<f32>,
        c_new: &Array2<f32>,
        w: &LayerWeights,
        active: &[bool],
    ) {
        let c_prev = self.c_prev.index_axis(Axis(0), t);
        simd::gates_into(
            z.view(),
            c_prev,
            c_new.view(),
            w,
            active,
            self.gates.index_axis_mut(Axis(0), t),
        );
    }
}

/// Full sequence forward for any config: stacked layers, both directions,
/// initial states, variable lengths. Returns PyTorch's `(output, (h_n, c_n))`.
pub fn forward(
    weights: &LstmWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<LstmOutput> {
    forward_impl(weights, &fresh_packs(weights), x, opts, None)
}

/// Packs for one call over `weights` (one per layer-direction).
pub(crate) fn fresh_packs(weights: &LstmWeights) -> Vec<LayerPacks> {
    let n = weights.layers.len();
    (0..n).map(|_| LayerPacks::new(false)).collect()
}

/// [`forward`] through `packs` (one per layer-direction of `weights`, from `weights`),
/// and filling `cache` with what backward needs, when given.
pub(crate) fn forward_impl(
    weights: &LstmWeights,
    packs: &[LayerPacks],
    x: ArrayView3<f32>,
    opts: ForwardOptions,
    mut cache: Option<&mut ForwardCache>,
) -> Result<LstmOutput> {
    let cfg = &weights.config;
    weights.validate()?;
    let dims = check_inputs(cfg, &x, &opts)?;
    let (t_len, b) = (dims.t, dims.b);
    let lens = lengths(dims, &opts);
    let init = opts.initial.cloned().unwrap_or_else(|| zero_state(cfg, b));
    let mut state = zero_state(cfg, b);

    let mut layer_in = time_major(cfg, &x);
    // A cache from an earlier call lends its arrays where the shapes match: everything in
    // them is overwritten below, so a training loop's steps allocate (and fault in) none.
    let old = cache.as_deref_mut().map(std::mem::take).unwrap_or_default();
    let (mut old_inputs, mut old_steps) = (old.layer_inputs.into_iter(), old.steps.into_iter());
    if let Some(c) = cache.as_deref_mut() {
        c.lens = lens.clone();
    }
    for l in 0..cfg.num_layers {
        if let Some(c) = cache.as_deref_mut() {
            c.layer_inputs
                .push(reuse_or_copy(old_inputs.next(), layer_in.view()));
        }
        // Not zeroed: every direction writes every row of its columns at every step.
        let mut layer_out = new_output((t_len, b, cfg.output_size()));
        for d in 0..cfg.num_directions() {
            let ld = weights.index(l, d);
            // Aligned, like every row the step's vector loads read (`super::aligned`;
            // but `unit_split` swaps in an unaligned state, see there).
            let mut hh = aligned::copy_of(init.h.index_axis(Axis(0), ld));
            let mut cc = aligned::copy_of(init.c.index_axis(Axis(0), ld));
            let (hs, keep) = (cfg.hidden_size, cache.is_some());
            let mut step_cache = match old_steps.next() {
                Some(old) if keep && old.gates.dim() == (t_len, b, 4 * hs) => old,
                _ => StepCache::new(t_len, b, hs, keep),
            };
            let run = Direction {
                w: &weights.layers[ld],
                packs: &packs[ld],
                reverse: d == 1,
                lens: &lens,
            };
            let mut out =
                layer_out.slice_mut(s![.., .., d * cfg.hidden_size..(d + 1) * cfg.hidden_size]);
            run.forward(
                layer_in.view(),
                &mut hh,
                &mut cc,
                step_cache.rows(),
                &mut out,
            );
            state.h.index_axis_mut(Axis(0), ld).assign(&hh);
            state.c.index_axis_mut(Axis(0), ld).assign(&cc);
            if let Some(c) = cache.as_deref_mut() {
                c.steps.push(step_cache);
            }
        }
        // SAFETY: each direction's `Direction::forward` wrote every element of its
        // columns (`write_step_output` at every step, live rows or not), and the
        // directions' columns cover the output.
        layer_in = unsafe { layer_out.assume_init() }.into();
    }
    Ok(LstmOutput {
        y: from_time_major(cfg, layer_in.into_owned()),
        h_n: state.h,
        c_n: state.c,
    })
}

/// `old` (an earlier call's array) holding `a`'s values where the shapes match (no
/// allocation), else a copy of `a`.
fn reuse_or_copy(old: Option<Array3<f32>>, a: ArrayView3<f32>) -> Array3<f32> {
    match old {
        Some(mut o) if o.dim() == a.dim() => {
            o.assign(&a);
            o
        }
        _ => a.to_owned(),
    }
}

/// One layer-direction of the forward.
#[derive(Clone, Copy)]
struct Direction<'a> {
    w: &'a LayerWeights,
    packs: &'a LayerPacks,
    reverse: bool,
    lens: &'a [usize],
}

impl Direction<'_> {
    /// Runs all steps over `layer_in` `[T, B, I]` from the state in `(hh, cc)` (left
    /// holding the final state), writing every row of `out` `[T, B, H]`: `h_t` for live
    /// rows, zero for the rest.
    fn forward(
        &self,
        layer_in: ArrayView3<f32>,
        hh: &mut Array2<f32>,
        cc: &mut Array2<f32>,
        mut step_cache: Option<CacheRows>,
        out: &mut Output,
    ) {
        let (t_len, b, _) = layer_in.dim();
        let inference = step_cache.is_none();
        if super::batch_split::applies(self.w, self.packs, t_len, (hh, cc)) {
            self.forward_by_batch_halves(layer_in, (hh, cc), step_cache, out);
            return;
        }
        let order = (0..t_len).map(|s| if self.reverse { t_len - 1 - s } else { s });
        if inference && super::unit_split::applies(self.w, (t_len, b), self.packs) {
            let w = (self.w, self.packs);
            super::unit_split::forward(w, layer_in, (hh, cc), order, self.lens, out);
            return;
        }
        let h = self.w.w_hh.ncols();
        let bias = self.w.combined_bias();
        let mut inputs = self.packs.step_inputs(layer_in.view(), self.w, bias);
        let mut z = aligned::zeros((b, 4 * h));
        let step_weights = simd::StepWeights::new(self.w, (t_len, b), self.packs);
        let mut from_zero = simd::starts_from_zero(hh.view(), cc.view(), self.w);
        let mut walk = Walk::Forward;
        // The reverse direction walks t = T-1 … 0; a sequence is idle while t ≥ its length,
        // so each one starts at its own last step.
        let mut active = vec![false; b];
        for t in order {
            simd::mark_live(&mut active, self.lens, t);
            // `lstm_step`'s math, in place and vectorised (see `cpu/simd.rs`).
            if let Some(k) = step_cache.as_mut() {
                k.keep_prev(t, hh, cc);
            }
            let sw = match std::mem::take(&mut from_zero) {
                true => step_weights.for_zero_state(),
                false => step_weights.walking(walk),
            };
            walk = walk.turned();
            simd::step_in_place(inputs.at(t), hh, cc, &sw, &active, &mut z);
            if let Some(k) = step_cache.as_mut() {
                k.keep_gates_from(t, &z, cc, self.w, &active);
            }
            write_step_output(out.index_axis_mut(Axis(0), t), hh.view(), &active);
        }
    }
}

impl Direction<'_> {
    /// [`Direction::forward`], each batch half on its own thread, into its rows of
    /// `step_cache` and `out` (`super::batch_split`).
    fn forward_by_batch_halves(
        &self,
        layer_in: ArrayView3<f32>,
        (hh, cc): (&mut Array2<f32>, &mut Array2<f32>),
        step_cache: Option<CacheRows>,
        out: &mut Output,
    ) {
        use super::batch_split::{halves, join_rows, rows_of};
        let [top, bottom] = halves(hh.nrows());
        let (out_top, out_bottom) = out.view_mut().split_at(Axis(1), top.end);
        let [cache_top, cache_bottom] = match step_cache {
            Some(k) => k.split(top.end).map(Some),
            None => [None, None],
        };
        let run = |rows: std::ops::Range<usize>, cache: Option<CacheRows>, mut out: Output| {
            // The half's input, contiguous as the projection wants it.
            let x = layer_in.slice(s![.., rows.clone(), ..]).to_owned();
            let (mut h, mut c) = (rows_of(hh, &rows), rows_of(cc, &rows));
            let half = Direction {
                lens: &self.lens[rows],
                ..*self
            };
            half.forward(x.view(), &mut h, &mut c, cache, &mut out);
            (h, c)
        };
        let (a, b) = super::threads::join(
            true,
            || run(top, cache_top, out_top),
            || run(bottom, cache_bottom, out_bottom),
        );
        join_rows(hh, [a.0, b.0]);
        join_rows(cc, [a.1, b.1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LstmConfig;
    use rand::{Rng, SeedableRng};

    /// Every path of the forward writes every element of its output (which starts
    /// NaN-poisoned in unit tests, `new_output`): the step loop, batch halves, unit
    /// halves, matrix-vector steps, both directions, a training forward; zero past each
    /// length, and the last live step's `h` is `h_n`.
    #[test]
    fn every_path_writes_every_output_row() {
        let threads = crate::cpu::threads::threads();
        crate::cpu::threads::set_threads(2);
        // (layers, bidirectional, T, B, I, H): one per path above.
        for &(l, bidi, t, b, i, h) in &[
            (1, false, 6, 9, 4, 40),
            (2, true, 5, 3, 6, 24),
            (1, false, 4, 12, 8, 128),
            (1, true, 7, 40, 5, 16),
        ] {
            let cfg = LstmConfig::new(i, h).layers(l).bidirectional(bidi);
            let w = LstmWeights::init(&cfg, 3).unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
            let x = Array3::from_shape_simple_fn((t, b, i), || rng.random_range(-1.0f32..1.0));
            let lens: Vec<usize> = (0..b).map(|r| 1 + (r * 5) % t).collect();
            let opts = ForwardOptions {
                initial: None,
                seq_lens: Some(&lens),
            };
            let packs = fresh_packs(&w);
            let mut cache = ForwardCache::default();
            for train in [false, true] {
                let keep = train.then_some(&mut cache);
                let out = forward_impl(&w, &packs, x.view(), opts, keep).unwrap();
                let tag = format!("L={l} bidi={bidi} T={t} B={b} H={h} train={train}");
                for (r, &len) in lens.iter().enumerate() {
                    let row = |s| out.y.slice(s![s, r, ..]);
                    assert!(
                        (0..len).all(|s| row(s).iter().all(|v| v.is_finite())),
                        "{tag}"
                    );
                    assert!((len..t).all(|s| row(s).iter().all(|v| *v == 0.0)), "{tag}");
                    let last = out.h_n.slice(s![(l - 1) * cfg.num_directions(), r, ..]);
                    assert_eq!(row(len - 1).slice(s![..h]), last, "{tag}");
                }
            }
        }
        crate::cpu::threads::set_threads(threads);
    }
}

//! CPU reference path (ndarray). Plain and readable: this is the spec the GPU is
//! tested against. Same schedule as the GPU: hoisted input projection, then one
//! step per time step. `lstm_step` is the readable statement of a step; `forward`
//! runs the same math through `fast::step_in_place` (in place, vectorised).

/// `fn $name(args)` that runs `$body(args)` compiled for AVX2 + FMA when the CPU has
/// them (checked at run time) and the portable build of the same body otherwise: the
/// vectorised pointwise loops of the CPU path all dispatch this way.
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            $body($($arg),*)
        }
    };
}

mod fast;
mod gemm;

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads of the CPU forward: 0 until first asked, then `LSTM_CPU_THREADS` or 1.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many threads the CPU forward uses for one step (1 or 2: the batch is split in
/// two halves when a step is large enough). Default 1, or `LSTM_CPU_THREADS`; see
/// BENCHMARKS.md for why one is the default.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = std::env::var("LSTM_CPU_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, 2);
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// Sets [`threads`] for every later CPU forward in this process (clamped to 1..=2).
pub fn set_threads(n: usize) {
    THREADS.store(n.clamp(1, 2), Ordering::Relaxed);
}

use ndarray::{s, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis, Zip};

use crate::error::Result;
use crate::sequence::{
    check_inputs, from_time_major, lengths, to_time_major, zero_state, ForwardOptions, LstmOutput,
};
use crate::weights::{LayerWeights, LstmWeights, PeepholeWeights};

mod backward;
mod train_ops;
pub use backward::{backward, forward_train, lstm_step_backward, Gradients, Upstream};
pub use train_ops::{optimizer_update, softmax_xent, UpdateRule};

/// Logistic sigmoid.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Twin of `shaders/input_proj.wgsl`: `Gx = X·W_ihᵀ + bias` for all rows at once.
/// `x` `[R, I]`, `w_ih` `[4H, I]`, `bias` `[4H]` → `[R, 4H]`.
pub fn input_proj(x: ArrayView2<f32>, w_ih: ArrayView2<f32>, bias: ArrayView1<f32>) -> Array2<f32> {
    x.dot(&w_ih.t()) + bias
}

/// Twin of `shaders/lstm_step.wgsl`: one time step for a batch.
///
/// `gx` `[B, 4H]` is this step's input projection (bias included); `h`, `c` `[B, H]`
/// are the previous state. Rows with `active[b] == false` keep their state.
/// Returns the new `(h, c)`.
pub fn lstm_step(
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    c: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
) -> (Array2<f32>, Array2<f32>) {
    let (h, c, _) = lstm_step_with_gates(gx, h, c, w, active);
    (h, c)
}

/// [`lstm_step`] that also returns the gate activations `[B, 4H]` (i, f, g, o blocks,
/// zero for inactive rows): what training keeps for backward.
pub fn lstm_step_with_gates(
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    c: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let hs = h.ncols();
    let mut z = &gx + &h.dot(&w.w_hh.t());
    if let PeepholeWeights::Full(w_ch) = &w.peephole {
        z += &c.dot(&w_ch.t());
    }
    let mut h_new = h.to_owned();
    let mut c_new = c.to_owned();
    let mut gates = Array2::zeros(z.raw_dim());
    for (b, &on) in active.iter().enumerate() {
        if !on {
            continue;
        }
        for j in 0..hs {
            let cp = c[[b, j]];
            let (mut zi, mut zf, zg, mut zo) = (
                z[[b, j]],
                z[[b, hs + j]],
                z[[b, 2 * hs + j]],
                z[[b, 3 * hs + j]],
            );
            let diag = match &w.peephole {
                PeepholeWeights::Diagonal(p) => Some((p[j], p[hs + j], p[2 * hs + j])),
                _ => None,
            };
            if let Some((pi, pf, _)) = diag {
                zi += pi * cp;
                zf += pf * cp;
            }
            let (i, f, g) = (sigmoid(zi), sigmoid(zf), zg.tanh());
            let cn = f * cp + i * g;
            if let Some((_, _, po)) = diag {
                zo += po * cn;
            }
            let o = sigmoid(zo);
            c_new[[b, j]] = cn;
            h_new[[b, j]] = o * cn.tanh();
            for (q, v) in [i, f, g, o].into_iter().enumerate() {
                gates[[b, q * hs + j]] = v;
            }
        }
    }
    (h_new, c_new, gates)
}

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
            gates: Array3::zeros((t, b, 4 * h)),
            h_prev: Array3::zeros((t, b, h)),
            c_prev: Array3::zeros((t, b, h)),
        }
    }
    fn keep_prev(&mut self, t: usize, h: &Array2<f32>, c: &Array2<f32>) {
        if !self.h_prev.is_empty() {
            self.h_prev.index_axis_mut(Axis(0), t).assign(h);
            self.c_prev.index_axis_mut(Axis(0), t).assign(c);
        }
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
        if !self.gates.is_empty() {
            let c_prev = self.c_prev.index_axis(Axis(0), t);
            fast::gates_into(
                z.view(),
                c_prev,
                c_new.view(),
                w,
                active,
                self.gates.index_axis_mut(Axis(0), t),
            );
        }
    }
}

/// Full sequence forward for any config: stacked layers, both directions,
/// initial states, variable lengths. Returns PyTorch's `(output, (h_n, c_n))`.
pub fn forward(
    weights: &LstmWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<LstmOutput> {
    forward_impl(weights, x, opts, None)
}

/// [`forward`] that also fills `cache` with what backward needs, when given.
pub(crate) fn forward_impl(
    weights: &LstmWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
    mut cache: Option<&mut ForwardCache>,
) -> Result<LstmOutput> {
    let cfg = &weights.config;
    weights.validate()?;
    let dims = check_inputs(cfg, &x, &opts)?;
    let (t_len, b, h) = (dims.t, dims.b, cfg.hidden_size);
    let lens = lengths(dims, &opts);
    let init = opts.initial.cloned().unwrap_or_else(|| zero_state(cfg, b));
    let mut state = zero_state(cfg, b);

    let mut layer_in = to_time_major(cfg, &x);
    if let Some(c) = cache.as_deref_mut() {
        *c = ForwardCache {
            lens: lens.clone(),
            ..Default::default()
        };
    }
    for l in 0..cfg.num_layers {
        if let Some(c) = cache.as_deref_mut() {
            c.layer_inputs.push(layer_in.clone());
        }
        let mut layer_out = Array3::<f32>::zeros((t_len, b, cfg.output_size()));
        for d in 0..cfg.num_directions() {
            let ld = weights.index(l, d);
            let w = &weights.layers[ld];
            let rows = layer_in
                .view()
                .into_shape_with_order((t_len * b, cfg.layer_input_size(l)))
                .expect("contiguous");
            let gx = input_proj(rows, w.w_ih.view(), w.combined_bias().view());
            let gx = gx
                .into_shape_with_order((t_len, b, 4 * h))
                .expect("contiguous");
            // Row-major whatever the caller's layout: the in-place step works on rows.
            let mut hh = init
                .h
                .index_axis(Axis(0), ld)
                .as_standard_layout()
                .into_owned();
            let mut cc = init
                .c
                .index_axis(Axis(0), ld)
                .as_standard_layout()
                .into_owned();
            let mut step_cache = StepCache::new(t_len, b, h, cache.is_some());
            let mut z = Array2::zeros((b, 4 * h));
            let step_weights = fast::StepWeights::new(w, b);
            for s in 0..t_len {
                // The reverse direction walks t = T-1 … 0; a sequence is idle while t ≥ its length,
                // so each one starts at its own last step.
                let t = if d == 0 { s } else { t_len - 1 - s };
                let active: Vec<bool> = lens.iter().map(|&n| t < n).collect();
                // `lstm_step`'s math, in place and vectorised (see `cpu/fast.rs`).
                step_cache.keep_prev(t, &hh, &cc);
                fast::step_in_place(
                    gx.index_axis(Axis(0), t),
                    &mut hh,
                    &mut cc,
                    &step_weights,
                    &active,
                    &mut z,
                );
                step_cache.keep_gates_from(t, &z, &cc, w, &active);
                let mut out = layer_out.slice_mut(s![t, .., d * h..(d + 1) * h]);
                Zip::from(out.rows_mut())
                    .and(hh.rows())
                    .and(&active)
                    .for_each(|mut o, hr, &on| {
                        if on {
                            o.assign(&hr);
                        }
                    });
            }
            state.h.index_axis_mut(Axis(0), ld).assign(&hh);
            state.c.index_axis_mut(Axis(0), ld).assign(&cc);
            if let Some(c) = cache.as_deref_mut() {
                c.steps.push(step_cache);
            }
        }
        layer_in = layer_out;
    }
    Ok(LstmOutput {
        y: from_time_major(cfg, layer_in),
        h_n: state.h,
        c_n: state.c,
    })
}

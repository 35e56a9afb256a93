//! The CPU forward's time step, without allocations and with vectorised activations.
//!
//! Same math and gate order as [`super::lstm_step`] (the readable twin of
//! `shaders/lstm_step.wgsl`; a unit test below holds the two together), arranged for
//! speed: the recurrent product goes into a preallocated `z` (at small batch
//! `panel_matvec`'s matrix-vector products over packed weights, or `matvec`'s over the
//! row-major ones in a short one-off forward, where packing would cost more than it
//! saves; above that `gemm`'s packed kernel; both add the step's input projection as
//! they write `z`), and the pointwise update runs over contiguous gate blocks with an
//! exp that the compiler vectorises (AVX2 + FMA where the CPU has them, chosen at run
//! time).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use super::gemm::{Epilogue, PackedWeights};
use super::matvec::{recurrent, step_product, MATVEC_MAX_BATCH};
use super::packs::LayerPacks;
use super::panel_matvec::Walk;
pub(crate) use super::projection::StepInput;
use crate::weights::{LayerWeights, PeepholeWeights};

/// A layer-direction's weights as the step uses them: above the matrix-vector batch
/// size, the recurrent matrices packed once for all T steps.
#[derive(Clone, Copy)]
pub(crate) struct StepWeights<'a> {
    w: &'a LayerWeights,
    w_hh: Option<&'a PackedWeights>,
    w_ch: Option<&'a PackedWeights>,
    /// The state is zero: skip the recurrent products (see [`starts_from_zero`]).
    from_zero: bool,
    /// A step of at most [`MATVEC_MAX_BATCH`] rows: its packed products are
    /// matrix-vector products walking the panels this way (`panel_matvec`).
    matvec: Option<Walk>,
}

impl<'a> StepWeights<'a> {
    /// `w` for `steps` steps of a batch of `batch` rows, its packed forms from `packs`
    /// (`w`'s) where [`LayerPacks::packs_step`] says.
    pub fn new(
        w: &'a LayerWeights,
        (steps, batch): (usize, usize),
        packs: &'a LayerPacks,
    ) -> StepWeights<'a> {
        let packed = packs.packs_step(steps, batch);
        StepWeights {
            w,
            w_hh: packed.then(|| packs.w_hh(w)),
            w_ch: packed.then(|| packs.w_ch(w)).flatten(),
            from_zero: false,
            matvec: (batch <= MATVEC_MAX_BATCH).then_some(Walk::Forward),
        }
    }

    /// The same weights, a matrix-vector step walking its panels as `walk` says (each
    /// step the other way from the last).
    pub fn walking(self, walk: Walk) -> StepWeights<'a> {
        let matvec = self.matvec.map(|_| walk);
        StepWeights { matvec, ..self }
    }

    /// The same weights for a step from a zero state (see [`starts_from_zero`]).
    pub fn for_zero_state(self) -> StepWeights<'a> {
        StepWeights {
            from_zero: true,
            ..self
        }
    }
}

/// Whether a step from `(h, c)` may skip its recurrent products: `h` is all zeros (and
/// `c` too with Full peepholes, whose `W_ch·c` reads all of it). A forward from the
/// default zero state then starts with `z = gx` alone: one step's products fewer, 1/T of
/// the recurrent work (4 % at T = 25). `gx + Σ w·0` is `gx` but for the sign of a zero.
pub(crate) fn starts_from_zero(h: ArrayView2<f32>, c: ArrayView2<f32>, w: &LayerWeights) -> bool {
    all_zero(h) && (!matches!(w.peephole, PeepholeWeights::Full(_)) || all_zero(c))
}

/// Whether every value of `a` is ±0 (a recurrent product from it is then +0).
pub(crate) fn all_zero(a: ArrayView2<f32>) -> bool {
    a.iter().all(|v| *v == 0.0)
}

/// One time step in place: `h`, `c` `[B, H]` become the new state for rows with
/// `active[b]`; other rows keep theirs. `gx` is this step's input projection `[B, 4H]`
/// (bias included), or its input to project as the product goes; `z` `[B, 4H]` is
/// scratch. (Accumulating into `gx` itself instead measured slower: a small `z` stays in
/// cache, a fresh slice of `gx` each step does not.)
///
/// Rows are independent, so with [`super::threads::threads`] > 1 and enough work the batch is
/// split in two halves, the second on the CPU path's worker (`threads::join`).
pub(crate) fn step_in_place(
    gx: StepInput,
    h: &mut Array2<f32>,
    c: &mut Array2<f32>,
    sw: &StepWeights,
    active: &[bool],
    z: &mut Array2<f32>,
) {
    let (b, hs) = h.dim();
    // Handing half to the worker cost a few µs (rayon's): worth it from ~0.5M FMAs.
    let split =
        super::threads::may_split() && b >= 2 * SPLIT_MIN_ROWS && b * 4 * hs * hs >= 1 << 19;
    step_split(gx, h, c, sw, active, z, split);
}

/// [`step_in_place`], on two threads if `split`.
fn step_split(
    gx: StepInput,
    h: &mut Array2<f32>,
    c: &mut Array2<f32>,
    sw: &StepWeights,
    active: &[bool],
    z: &mut Array2<f32>,
    split: bool,
) {
    let b = h.nrows();
    if !split || b < 2 {
        step_rows(gx, h.view_mut(), c.view_mut(), sw, active, z.view_mut());
        return;
    }
    let mid = b / 2;
    let (g0, g1) = gx.split_at(mid);
    let (h0, h1) = h.view_mut().split_at(Axis(0), mid);
    let (c0, c1) = c.view_mut().split_at(Axis(0), mid);
    let (z0, z1) = z.view_mut().split_at(Axis(0), mid);
    let (a0, a1) = active.split_at(mid);
    super::threads::join(
        true,
        || step_rows(g0, h0, c0, sw, a0, z0),
        || step_rows(g1, h1, c1, sw, a1, z1),
    );
}

/// Smallest half-batch worth a thread of its own.
const SPLIT_MIN_ROWS: usize = 4;

/// [`step_in_place`] on a block of batch rows (all views row-major).
fn step_rows(
    gx: StepInput,
    h: ArrayViewMut2<f32>,
    c: ArrayViewMut2<f32>,
    sw: &StepWeights,
    active: &[bool],
    mut z: ArrayViewMut2<f32>,
) {
    pre_activations(gx, h.view(), c.view(), sw, z.view_mut());
    let diag = match &sw.w.peephole {
        PeepholeWeights::Diagonal(p) => p.as_slice(),
        _ => None,
    };
    cells(z.view(), h, c, diag, active);
}

/// `z = gx + h·W_hhᵀ (+ c·W_chᵀ with Full peepholes)`: the step's gate pre-activations
/// `[B, 4H']` for the `4H'` rows of `sw`'s weights.
pub(crate) fn pre_activations(
    gx: StepInput,
    h: ArrayView2<f32>,
    c: ArrayView2<f32>,
    sw: &StepWeights,
    mut z: ArrayViewMut2<f32>,
) {
    let w = sw.w;
    if sw.from_zero {
        gx.write_into(&mut z);
        return;
    }
    match (sw.w_hh, gx) {
        (Some(packed), StepInput::Fused(p)) if sw.matvec.is_none() => {
            packed.mul_projecting(h, &mut z, p)
        }
        (Some(packed), StepInput::Projected(gx)) if gx.is_standard_layout() => {
            let gx = gx.to_slice().expect("standard layout");
            step_product(packed, h, &mut z, Epilogue::AddMatrix(gx), sw.matvec)
        }
        // The same bits: `gx + Σ` either way.
        _ => {
            gx.write_into(&mut z);
            recurrent(h, &w.w_hh, sw.w_hh, sw.matvec, &mut z);
        }
    }
    if let PeepholeWeights::Full(w_ch) = &w.peephole {
        recurrent(c, w_ch, sw.w_ch, sw.matvec, &mut z);
    }
}

/// The pointwise update of the live rows: `h`, `c` `[B, H']` from `z` `[B, 4H']` (and `c`),
/// with diagonal peepholes `[3H']` if given.
pub(crate) fn cells(
    z: ArrayView2<f32>,
    mut h: ArrayViewMut2<f32>,
    mut c: ArrayViewMut2<f32>,
    diag: Option<&[f32]>,
    active: &[bool],
) {
    let hs = h.ncols();
    for (b, &on) in active.iter().enumerate() {
        if !on {
            continue;
        }
        let (zr, mut hr, mut cr) = (z.row(b), h.row_mut(b), c.row_mut(b));
        match (zr.as_slice(), hr.as_slice_mut(), cr.as_slice_mut()) {
            (Some(zr), Some(hr), Some(cr)) => cell_row(&zr[..4 * hs], hr, cr, diag),
            _ => unreachable!("the step's rows are contiguous"),
        }
    }
}

/// `active[b]`: whether row b's sequence is live at step `t` (`t` below its length).
pub(crate) fn mark_live(active: &mut [bool], lens: &[usize], t: usize) {
    active.iter_mut().zip(lens).for_each(|(on, &n)| *on = t < n);
}

avx2_dispatch!(
    /// The pointwise update of one batch row: `z` `[4H]` (blocks i, f, g, o), `h`, `c` `[H]`.
    fn cell_row(z: &[f32], h: &mut [f32], c: &mut [f32], diag: Option<&[f32]>) => cell_row_body
);

#[inline(always)]
fn cell_row_body(z: &[f32], h: &mut [f32], c: &mut [f32], diag: Option<&[f32]>) {
    let hs = h.len();
    let (zi, rest) = z.split_at(hs);
    let (zf, rest) = rest.split_at(hs);
    let (zg, zo) = rest.split_at(hs);
    let c = &mut c[..hs];
    let zo = &zo[..hs];
    // Two passes, the second for what needs the new c: in one, each unit's chain of two
    // dependent exps was longer than the out-of-order window could hide (−20 % for the
    // pointwise update, same bits).
    match diag {
        None => {
            for j in 0..hs {
                c[j] = sigmoid(zf[j]) * c[j] + sigmoid(zi[j]) * tanh(zg[j]);
                h[j] = sigmoid(zo[j]);
            }
            for (hj, &cj) in h.iter_mut().zip(&*c) {
                *hj *= tanh(cj);
            }
        }
        Some(p) => {
            let (pi, rest) = p.split_at(hs);
            let (pf, po) = rest.split_at(hs);
            for j in 0..hs {
                let cp = c[j];
                let i = sigmoid(zi[j] + pi[j] * cp);
                let f = sigmoid(zf[j] + pf[j] * cp);
                c[j] = f * cp + i * tanh(zg[j]);
            }
            for j in 0..hs {
                let cn = c[j];
                h[j] = sigmoid(zo[j] + po[j] * cn) * tanh(cn);
            }
        }
    }
}

/// The gate activations training keeps, recomputed after [`step_in_place`] from its
/// pre-activations `z` `[B, 4H]` and the states before (`c_prev`) and after (`c_new`):
/// `(σ(z_i + p_i·c_prev), σ(z_f + p_f·c_prev), tanh z_g, σ(z_o + p_o·c_new))`, zero for
/// rows that are not active (what `lstm_step_with_gates` returns).
pub(crate) fn gates_into(
    z: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    c_new: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
    mut out: ArrayViewMut2<f32>,
) {
    let diag = match &w.peephole {
        PeepholeWeights::Diagonal(p) => p.as_slice(),
        _ => None,
    };
    for (b, &on) in active.iter().enumerate() {
        let mut orow = out.row_mut(b);
        if !on {
            orow.fill(0.0);
            continue;
        }
        let (zr, cp, cn) = (z.row(b), c_prev.row(b), c_new.row(b));
        match (
            zr.as_slice(),
            cp.as_slice(),
            cn.as_slice(),
            orow.as_slice_mut(),
        ) {
            (Some(zr), Some(cp), Some(cn), Some(o)) => gates_row(zr, cp, cn, diag, o),
            _ => unreachable!("training rows are standard layout"),
        }
    }
}

avx2_dispatch!(fn gates_row(z: &[f32], cp: &[f32], cn: &[f32], diag: Option<&[f32]>, out: &mut [f32]) => gates_row_body);

#[inline(always)]
fn gates_row_body(z: &[f32], cp: &[f32], cn: &[f32], diag: Option<&[f32]>, out: &mut [f32]) {
    let hs = cp.len();
    let (cn, z, out) = (&cn[..hs], &z[..4 * hs], &mut out[..4 * hs]);
    let zero = [0.0f32; 0];
    let (pi, pf, po) = match diag {
        Some(p) => (&p[..hs], &p[hs..2 * hs], &p[2 * hs..3 * hs]),
        None => (&zero[..], &zero[..], &zero[..]),
    };
    let (oi, rest) = out.split_at_mut(hs);
    let (of, rest) = rest.split_at_mut(hs);
    let (og, oo) = rest.split_at_mut(hs);
    if diag.is_some() {
        for j in 0..hs {
            oi[j] = sigmoid(z[j] + pi[j] * cp[j]);
            of[j] = sigmoid(z[hs + j] + pf[j] * cp[j]);
            og[j] = tanh(z[2 * hs + j]);
            oo[j] = sigmoid(z[3 * hs + j] + po[j] * cn[j]);
        }
    } else {
        for j in 0..hs {
            oi[j] = sigmoid(z[j]);
            of[j] = sigmoid(z[hs + j]);
            og[j] = tanh(z[2 * hs + j]);
            oo[j] = sigmoid(z[3 * hs + j]);
        }
    }
}

/// `e^x` to about 1 ulp for |x| ≤ 87, saturating beyond (`e^-87` ≈ 1.6e-38); branch-free so that loops
/// over it vectorise. Range reduction `x = n·ln2 + r`, |r| ≤ ln2/2, then a degree-7
/// Taylor polynomial (remainder < 1e-8 relative) and `2^n` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p: f32 = 1.0 / 5040.0;
    for coeff in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p.mul_add(r, coeff);
    }
    p * pow2(n)
}

/// `2^n` for an integral `n` in [-126, 127], built in the exponent bits. `n as i32` would
/// be a saturating cast, which LLVM scalarises lane by lane (a compare and two `cmov`s
/// each: most of the pointwise update's time); adding 1.5·2²³ instead puts `n` in the
/// low mantissa bits, where one vector add and shift move it to the exponent. Same bits.
#[inline(always)]
fn pow2(n: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: t's bits are 0x4B40_0000 + n
    f32::from_bits((n + ROUND).to_bits().wrapping_add(127) << 23)
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh` from `e^{-2|x|}` (never inf/inf), the form the step shader uses too.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

#[cfg(test)]
#[path = "simd_tests.rs"]
mod tests;

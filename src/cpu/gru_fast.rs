//! The CPU schedule's GRU step: [`super::gru_step()`]'s math with the recurrent product
//! run by the LSTM's step GEMM (`matvec::recurrent`: weights packed once per
//! layer-direction, AVX2/FMA matvec or micro-kernel) into scratch reused across steps,
//! instead of a general GEMM that packs the weights and allocates on every step.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};

use super::gemm::PackedWeights;
use super::matvec::{recurrent, MATVEC_MAX_BATCH};
use super::simd::{all_zero, sigmoid, tanh};
use crate::gru::GruLayerWeights;

/// One layer-direction's recurrent weights ready for every step of a batch of `b` rows.
pub(crate) struct GruStepper {
    /// `[3H, H]` (reset after: one product for all gates) or the r, z rows `[2H, H]`
    /// and the n rows `[H, H]` (reset before: n's operand needs r first).
    whole: Option<(Array2<f32>, Option<PackedWeights>)>,
    rz: Option<(Array2<f32>, Option<PackedWeights>)>,
    n: Option<(Array2<f32>, Option<PackedWeights>)>,
    b_hn: Array1<f32>,
    reset_after: bool,
    /// `[B, 3H]` recurrent products; reset before: `[B, 2H]` and `[B, H]` parts (the
    /// packed GEMM writes whole row-major arrays) and `r ⊙ h` `[B, H]`.
    acc: Array2<f32>,
    acc_rz: Array2<f32>,
    acc_n: Array2<f32>,
    rh: Array2<f32>,
}

fn prepared(m: ArrayView2<f32>, b: usize) -> (Array2<f32>, Option<PackedWeights>) {
    (
        m.to_owned(),
        (b > MATVEC_MAX_BATCH).then(|| PackedWeights::new(m)),
    )
}

impl GruStepper {
    pub fn new(w: &GruLayerWeights, reset_after: bool, b: usize) -> GruStepper {
        let h = w.w_hh.ncols();
        let (whole, rz, n) = if reset_after {
            (Some(prepared(w.w_hh.view(), b)), None, None)
        } else {
            let rz = prepared(w.w_hh.slice(s![..2 * h, ..]), b);
            (
                None,
                Some(rz),
                Some(prepared(w.w_hh.slice(s![2 * h.., ..]), b)),
            )
        };
        GruStepper {
            whole,
            rz,
            n,
            b_hn: super::gru_step::recurrent_n_bias(w, reset_after),
            reset_after,
            acc: Array2::zeros((b, 3 * h)),
            acc_rz: Array2::zeros((b, 2 * h)),
            acc_n: Array2::zeros((b, h)),
            rh: Array2::zeros((b, h)),
        }
    }

    /// `h_t` for every row into `h_new` and, if given, the gates (r, z, n, a) into `gates`
    /// `[B, 4H]`, from `gx` `[B, 3H]` (bias folded) and `h` `[B, H]`.
    pub fn step(
        &mut self,
        gx: ArrayView2<f32>,
        h: ArrayView2<f32>,
        mut h_new: ArrayViewMut2<f32>,
        mut gates: Option<ArrayViewMut2<f32>>,
    ) {
        let hs = h.ncols();
        self.acc.fill(0.0);
        // From a zero state (a forward's first step, by default) every product is +0, as
        // `acc` already is: skipping them gives the same bits. (Any other state stops
        // the test at its first non-zero value.)
        if !all_zero(h) {
            self.recurrent_products(gx, h);
        }
        let acc = self.acc.as_slice().expect("standard layout");
        for row in 0..h.nrows() {
            let hr = h.row(row);
            let mut hn = h_new.row_mut(row);
            let mut g = gates.as_mut().map(|g| g.row_mut(row));
            let gates_row = match g.as_mut() {
                Some(g) => g.as_slice_mut(),
                None => None,
            };
            let gx_row = gx.row(row);
            gru_row(
                gx_row.as_slice().expect("standard layout"),
                &acc[row * 3 * hs..(row + 1) * 3 * hs],
                self.b_hn.as_slice().expect("standard layout"),
                hr.as_slice().expect("standard layout"),
                hn.as_slice_mut().expect("standard layout"),
                gates_row,
                self.reset_after,
            );
        }
    }

    /// `acc` = the step's recurrent products from `h` (reset before: `r` from `gx` first).
    fn recurrent_products(&mut self, gx: ArrayView2<f32>, h: ArrayView2<f32>) {
        let hs = h.ncols();
        let mul =
            |s: ArrayView2<f32>,
             (w, p): &(Array2<f32>, Option<PackedWeights>),
             mut z: ArrayViewMut2<f32>| { recurrent(s, w, p.as_ref(), None, &mut z) };
        match (&self.whole, &self.rz, &self.n) {
            (Some(w), _, _) => mul(h, w, self.acc.view_mut()),
            (None, Some(rz), Some(n)) => {
                self.acc_rz.fill(0.0);
                self.acc_n.fill(0.0);
                mul(h, rz, self.acc_rz.view_mut());
                // n's operand is r ⊙ h, so r comes first.
                let rows = self.acc_rz.rows().into_iter().zip(gx.rows()).zip(h.rows());
                for (mut o, ((acc_r, gx_r), h_r)) in self.rh.rows_mut().into_iter().zip(rows) {
                    // Slices, for a loop that vectorises (the rows are contiguous).
                    let all = (
                        o.as_slice_mut(),
                        acc_r.as_slice(),
                        gx_r.as_slice(),
                        h_r.as_slice(),
                    );
                    let (Some(o), Some(acc_r), Some(gx_r), Some(h_r)) = all else {
                        unreachable!("the step's rows are contiguous")
                    };
                    let (o, acc_r, gx_r, h_r) =
                        (&mut o[..hs], &acc_r[..hs], &gx_r[..hs], &h_r[..hs]);
                    for j in 0..hs {
                        o[j] = sigmoid(gx_r[j] + acc_r[j]) * h_r[j];
                    }
                }
                mul(self.rh.view(), n, self.acc_n.view_mut());
                self.acc.slice_mut(s![.., ..2 * hs]).assign(&self.acc_rz);
                self.acc.slice_mut(s![.., 2 * hs..]).assign(&self.acc_n);
            }
            _ => unreachable!("a stepper holds the whole matrix or both parts"),
        }
    }
}

#[inline(always)]
fn gru_row_body(
    gx: &[f32],
    acc: &[f32],
    b_hn: &[f32],
    h: &[f32],
    h_new: &mut [f32],
    gates: Option<&mut [f32]>,
    reset_after: bool,
) {
    let hs = h.len();
    let (h_new, b_hn) = (&mut h_new[..hs], &b_hn[..hs]);
    // Gate blocks as slices of their own, and the modes decided outside the loops: the
    // loops then vectorise (one indexed loop with both branches inside did not: 35 % of a
    // GRU forward at S3, BENCHMARKS.md §34). Same operations, same bits. Plain loops, no
    // shared closure: a closure does not inherit this function's target features, and
    // one per unit ran the inference 8× slower.
    let [gx_r, gx_z, gx_n] = blocks(gx, hs);
    let [acc_r, acc_z, acc_n] = blocks(acc, hs);
    match (gates, reset_after) {
        (None, true) => {
            for j in 0..hs {
                let r = sigmoid(gx_r[j] + acc_r[j]);
                let z = sigmoid(gx_z[j] + acc_z[j]);
                let n = tanh(gx_n[j] + r * (acc_n[j] + b_hn[j]));
                h_new[j] = n + z * (h[j] - n);
            }
        }
        (None, false) => {
            for j in 0..hs {
                let z = sigmoid(gx_z[j] + acc_z[j]);
                let n = tanh(gx_n[j] + acc_n[j]);
                h_new[j] = n + z * (h[j] - n);
            }
        }
        (Some(g), _) => {
            let [g_r, g_z, g_n, g_a] = blocks4(g, hs);
            for j in 0..hs {
                let r = sigmoid(gx_r[j] + acc_r[j]);
                let z = sigmoid(gx_z[j] + acc_z[j]);
                let a = if reset_after { acc_n[j] + b_hn[j] } else { 0.0 };
                let n_pre = if reset_after {
                    gx_n[j] + r * a
                } else {
                    gx_n[j] + acc_n[j]
                };
                let n = tanh(n_pre);
                h_new[j] = n + z * (h[j] - n);
                (g_r[j], g_z[j], g_n[j], g_a[j]) = (r, z, n, a);
            }
        }
    }
}

/// The three `[H]` gate blocks of a `[3H]` row.
#[inline(always)]
fn blocks(v: &[f32], hs: usize) -> [&[f32]; 3] {
    let (a, rest) = v.split_at(hs);
    let (b, c) = rest.split_at(hs);
    [a, b, &c[..hs]]
}

/// The four `[H]` blocks of a `[4H]` gate row, to write.
#[inline(always)]
fn blocks4(v: &mut [f32], hs: usize) -> [&mut [f32]; 4] {
    let (a, rest) = v.split_at_mut(hs);
    let (b, rest) = rest.split_at_mut(hs);
    let (c, d) = rest.split_at_mut(hs);
    [a, b, c, &mut d[..hs]]
}

avx2_dispatch!(
    /// The pointwise GRU update of one batch row: `gx`, `acc` `[3H]` (r, z, n), `h`,
    /// `h_new` `[H]`, optionally the gates `[4H]` (r, z, n, a).
    fn gru_row(
        gx: &[f32],
        acc: &[f32],
        b_hn: &[f32],
        h: &[f32],
        h_new: &mut [f32],
        gates: Option<&mut [f32]>,
        reset_after: bool,
    ) => gru_row_body
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gru::{GruConfig, GruWeights};

    /// From a zero state (with a negative zero in it) the recurrent products leave `acc`
    /// all +0, the bits `step` leaves there when it skips them: both gate orders, both
    /// batch paths.
    #[test]
    fn products_from_a_zero_state_are_positive_zeros() {
        for reset_after in [true, false] {
            for b in [1, MATVEC_MAX_BATCH + 3] {
                let cfg = GruConfig::new(4, 19).reset_after(reset_after);
                let w = &GruWeights::init(&cfg, 3).unwrap().layers[0];
                let mut stepper = GruStepper::new(w, reset_after, b);
                let gx = Array2::from_shape_fn((b, 57), |(i, j)| (i + j) as f32 * 0.1 - 2.0);
                let mut h = Array2::zeros((b, 19));
                h[[0, 3]] = -0.0;
                stepper.acc.fill(0.0); // as `step` leaves it
                stepper.recurrent_products(gx.view(), h.view());
                let bits: Vec<u32> = stepper.acc.iter().map(|v| v.to_bits()).collect();
                assert!(
                    bits.iter().all(|&v| v == 0),
                    "reset_after {reset_after} B={b}"
                );
            }
        }
    }
}

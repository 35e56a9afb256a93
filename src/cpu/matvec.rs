//! The CPU step's recurrent product `z += s · wᵀ`: through packed weights where the
//! step has them (the packed GEMM above [`MATVEC_MAX_BATCH`] rows, `panel_matvec` at
//! or below), else a matrix-vector product per batch row over the row-major weights (a
//! short one-off forward, where packing would cost more than the product saves), split
//! over the two threads by rows of `w` when it is large.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::gemm::{Epilogue, PackedWeights};
use super::isa::Isa;
pub(crate) use super::panel_matvec::MATVEC_MAX_BATCH;
use super::panel_matvec::{Walk, MATVEC_SPLIT_FMAS};

/// The step's recurrent product `z = s · wᵀ` (+ `epilogue`) through `packed`: with
/// `matvec` (a step of at most [`MATVEC_MAX_BATCH`] rows) `panel_matvec`'s products
/// walking the panels that way, else the packed GEMM. The two sum differently, so the
/// choice is the step's (its whole batch), not a part's: the halves of a split step keep
/// their step's bits.
pub(crate) fn step_product(
    packed: &PackedWeights,
    s: ArrayView2<f32>,
    z: &mut ArrayViewMut2<f32>,
    epilogue: Epilogue,
    matvec: Option<Walk>,
) {
    let isa = Isa::best().unwrap_or(Isa::Avx2);
    match (matvec, packed.panels()) {
        (Some(walk), Some((panels, n, k))) => {
            let s = s.as_standard_layout();
            let ss = s.as_slice().expect("standard layout");
            let zs = z.as_slice_mut().expect("z is standard layout");
            super::panel_matvec::rows_into(isa, panels, (n, k), ss, zs, epilogue, walk);
        }
        _ => packed.mul(s, z, epilogue),
    }
}

/// `z += s · wᵀ`, `s` `[B, K]`, `w` `[4H, K]` (`packed`: the same, packed, multiplied
/// as [`step_product`] says for `matvec`).
pub(crate) fn recurrent(
    s: ArrayView2<f32>,
    w: &Array2<f32>,
    packed: Option<&PackedWeights>,
    matvec: Option<Walk>,
    z: &mut ArrayViewMut2<f32>,
) {
    if let Some(p) = packed {
        step_product(p, s, z, Epilogue::Accumulate, matvec);
        return;
    }
    if s.nrows() <= MATVEC_MAX_BATCH {
        let (k, n) = (w.ncols(), w.nrows());
        if let (Some(ws), Some(ss), Some(zs)) = (w.as_slice(), s.as_slice(), z.as_slice_mut()) {
            let split = super::threads::may_split() && n * k >= MATVEC_SPLIT_FMAS;
            matvec_rows(ws, k, ss, zs, split);
            return;
        }
    }
    general_mat_mul(1.0, &s, &w.t(), 1.0, z);
}

/// `z[b] += w · s[b]` for every batch row (`s` `[B, K]`, `z` `[B, N]`, row-major); with
/// `split`, the first half of `w`'s rows on this thread and the second on the CPU path's
/// worker. Each output row's sum is computed alone, the same way either way, so the
/// bits do not depend on the split.
fn matvec_rows(w: &[f32], k: usize, s: &[f32], z: &mut [f32], split: bool) {
    let n = w.len() / k.max(1);
    let mid = (n / 2) / 4 * 4;
    if !split || mid == 0 || z.len() / n.max(1) > MATVEC_MAX_BATCH {
        for (sr, zr) in s.chunks_exact(k).zip(z.chunks_exact_mut(n)) {
            matvec_acc(w, k, sr, zr);
        }
        return;
    }
    // The halves of each output row, in arrays sized for the largest batch that gets
    // here (MATVEC_MAX_BATCH): no allocation in the step loop.
    let mut top: [&mut [f32]; MATVEC_MAX_BATCH] = Default::default();
    let mut bottom: [&mut [f32]; MATVEC_MAX_BATCH] = Default::default();
    let rows = z.len() / n;
    for (i, r) in z.chunks_exact_mut(n).take(MATVEC_MAX_BATCH).enumerate() {
        (top[i], bottom[i]) = r.split_at_mut(mid);
    }
    let (w_top, w_bottom) = w.split_at(mid * k);
    let half = |w: &[f32], zs: [&mut [f32]; MATVEC_MAX_BATCH]| {
        for (sr, zr) in s.chunks_exact(k).zip(zs).take(rows) {
            matvec_acc(w, k, sr, zr);
        }
    };
    super::threads::join(true, || half(w_top, top), || half(w_bottom, bottom));
}

/// `z[r] += Σ_k w[r·k_len + k] · s[k]` for every row r of `w`.
fn matvec_acc(w: &[f32], k_len: usize, s: &[f32], z: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { matvec_acc_avx2(w, k_len, s, z) };
        return;
    }
    matvec_acc_body(w, k_len, s, z);
}

/// Eight rows at a time share each load of `s`, one 8-wide partial sum per row: eight
/// independent FMA chains, as the two FMA pipes need. (4 rows × 16 k with two sums per
/// row measured 15.6 µs per 1024 × 256 product against 11.0 for this; the compiler's own
/// vectorisation of the plain loop stays 2-wide.) Every row is summed the same way
/// whichever block it is in, so a split of the rows does not change its bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_acc_avx2(w: &[f32], k_len: usize, s: &[f32], z: &mut [f32]) {
    let rows = z.len();
    assert!(w.len() >= rows * k_len && s.len() >= k_len);
    let mut r = 0;
    while r + 8 <= rows {
        rows_dot_avx2::<8>(&w[r * k_len..], k_len, s, &mut z[r..r + 8]);
        r += 8;
    }
    for r in r..rows {
        rows_dot_avx2::<1>(&w[r * k_len..], k_len, s, &mut z[r..r + 1]);
    }
}

/// `z[i] += w_i · s` for the `R` rows of `w` (row stride `k_len`) starting at its first.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rows_dot_avx2<const R: usize>(w: &[f32], k_len: usize, s: &[f32], z: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(w.len() >= (R - 1) * k_len + k_len && s.len() >= k_len && z.len() >= R);
    let k8 = k_len / 8 * 8;
    let (wp, sp) = (w.as_ptr(), s.as_ptr());
    let mut acc = [_mm256_setzero_ps(); R];
    for k in (0..k8).step_by(8) {
        let x = _mm256_loadu_ps(sp.add(k));
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i * k_len + k)), x, *a);
        }
    }
    for (i, a) in acc.iter().enumerate() {
        let q = _mm_add_ps(_mm256_castps256_ps128(*a), _mm256_extractf128_ps(*a, 1));
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let mut sum = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
        for k in k8..k_len {
            sum = w[i * k_len + k].mul_add(s[k], sum);
        }
        z[i] += sum;
    }
}

#[inline(always)]
fn matvec_acc_body(w: &[f32], k_len: usize, s: &[f32], z: &mut [f32]) {
    let s = &s[..k_len];
    for (zr, wr) in z.iter_mut().zip(w.chunks_exact(k_len)) {
        *zr += dot(wr, s);
    }
}

/// Dot product with 16 independent partial sums (two 8-wide vectors once vectorised).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let (ac, bc) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..L {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ar.iter().zip(br) {
        tail = x.mul_add(*y, tail);
    }
    // Pairwise reduction of the partial sums.
    let mut n = L;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            acc[i] += acc[i + n];
        }
    }
    acc[0] + tail
}

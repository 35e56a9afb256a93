//! `z += s · wᵀ` for the recurrent product of the CPU step, with `w` packed once per
//! layer-direction instead of once per step.
//!
//! A general GEMM (ndarray's) packs both operands on every call; here the weights are
//! the same for all T steps, so they are laid out once in panels of 16 rows of `w`
//! (`[K][16]` each, the layout the micro-kernel streams), and each step only runs the
//! 6 × 16 AVX2/FMA micro-kernel over them: 12 accumulators, per k two loads of the
//! panel and six broadcasts of `s` for 12 FMAs. Without AVX2 + FMA, ndarray's GEMM.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// Rows of `w` (columns of `z`) per panel.
const NR: usize = 16;
/// Rows of `s` per micro-kernel call.
const MR: usize = 6;
/// Rows of `s` per pass over all panels: 120 rows of a 1024-wide `s` stay in L2 while
/// every panel streams past them.
const MC: usize = 120;

/// `w` `[N, K]` ready for [`PackedWeights::mul_acc`].
pub(crate) struct PackedWeights {
    n: usize,
    k: usize,
    /// `ceil(N / 16)` panels of `[K][16]`, rows past N zero.
    panels: Vec<f32>,
    /// The unpacked weights, for the fallback without AVX2.
    fallback: Option<Array2<f32>>,
}

impl PackedWeights {
    pub fn new(w: ArrayView2<f32>) -> PackedWeights {
        let (n, k) = w.dim();
        if !has_avx2_fma() {
            return PackedWeights {
                n,
                k,
                panels: Vec::new(),
                fallback: Some(w.to_owned()),
            };
        }
        let np = n.div_ceil(NR);
        let mut panels = vec![0.0f32; np * k * NR];
        for p in 0..np {
            for r in 0..NR.min(n - p * NR) {
                let row = w.row(p * NR + r);
                for (kk, &v) in row.iter().enumerate() {
                    panels[(p * k + kk) * NR + r] = v;
                }
            }
        }
        PackedWeights {
            n,
            k,
            panels,
            fallback: None,
        }
    }

    /// `z += s · wᵀ`: `s` `[B, K]`, `z` `[B, N]` (row-major).
    pub fn mul_acc(&self, s: ArrayView2<f32>, z: &mut ArrayViewMut2<f32>) {
        assert_eq!(s.ncols(), self.k, "operand width");
        assert_eq!(z.ncols(), self.n, "output width");
        assert_eq!(s.nrows(), z.nrows(), "batch");
        if let Some(w) = &self.fallback {
            general_mat_mul(1.0, &s, &w.t(), 1.0, z);
            return;
        }
        let s = s.as_standard_layout();
        let ss = s.as_slice().expect("standard layout");
        let zs = z.as_slice_mut().expect("z is standard layout");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `panels` is only filled (fallback None) when the CPU has AVX2 and FMA.
        unsafe {
            self.mul_acc_avx2(ss, zs);
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("packed weights exist only on x86_64 with AVX2");
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_acc_avx2(&self, s: &[f32], z: &mut [f32]) {
        let n = self.n;
        let rows = z.len() / n;
        for chunk in (0..rows).step_by(MC) {
            let chunk_end = (chunk + MC).min(rows);
            for p in 0..n.div_ceil(NR) {
                self.panel_rows(p, chunk..chunk_end, s, z);
            }
        }
    }

    /// Rows `range` of `z` += those rows of `s` times panel `p`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn panel_rows(&self, p: usize, range: std::ops::Range<usize>, s: &[f32], z: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        let panel = &self.panels[p * k * NR..(p + 1) * k * NR];
        let cols = NR.min(n - p * NR);
        {
            let rows = range.end;
            let mut r0 = range.start;
            while r0 < rows {
                let mr = MR.min(rows - r0);
                let acc = match mr {
                    6 => kernel::<6>(panel, &s[r0 * k..], k),
                    5 => kernel::<5>(panel, &s[r0 * k..], k),
                    4 => kernel::<4>(panel, &s[r0 * k..], k),
                    3 => kernel::<3>(panel, &s[r0 * k..], k),
                    2 => kernel::<2>(panel, &s[r0 * k..], k),
                    _ => kernel::<1>(panel, &s[r0 * k..], k),
                };
                for (r, a) in acc.iter().enumerate().take(mr) {
                    let zr = &mut z[(r0 + r) * n + p * NR..][..cols];
                    for (zv, av) in zr.iter_mut().zip(a) {
                        *zv += av;
                    }
                }
                r0 += mr;
            }
        }
    }
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `M` rows of `s` (row stride `k`) times one `[K][16]` panel: the `M × 16` products.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel<const M: usize>(panel: &[f32], s: &[f32], k: usize) -> [[f32; NR]; MR] {
    use std::arch::x86_64::*;
    assert!(panel.len() >= k * NR && s.len() >= (M - 1) * k + k);
    let mut acc = [[_mm256_setzero_ps(); 2]; M];
    let pp = panel.as_ptr();
    let sp = s.as_ptr();
    for kk in 0..k {
        let b0 = _mm256_loadu_ps(pp.add(kk * NR));
        let b1 = _mm256_loadu_ps(pp.add(kk * NR + 8));
        for (r, a) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*sp.add(r * k + kk));
            a[0] = _mm256_fmadd_ps(x, b0, a[0]);
            a[1] = _mm256_fmadd_ps(x, b1, a[1]);
        }
    }
    let mut out = [[0.0f32; NR]; MR];
    for (o, a) in out.iter_mut().zip(&acc) {
        _mm256_storeu_ps(o.as_mut_ptr(), a[0]);
        _mm256_storeu_ps(o.as_mut_ptr().add(8), a[1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn matches_ndarray_gemm() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // Row counts around the 6-row kernel, column counts around the 16-wide panel.
        for &(b, n, k) in &[
            (1, 16, 8),
            (5, 17, 3),
            (6, 32, 40),
            (13, 44, 37),
            (128, 1024, 64),
        ] {
            let s = Array2::from_shape_simple_fn((b, k), || rng.random_range(-1.0f32..1.0));
            let w = Array2::from_shape_simple_fn((n, k), || rng.random_range(-1.0f32..1.0));
            let z0 = Array2::from_shape_simple_fn((b, n), || rng.random_range(-1.0f32..1.0));
            let mut want = z0.clone();
            general_mat_mul(1.0, &s, &w.t(), 1.0, &mut want);
            let mut got = z0.clone();
            PackedWeights::new(w.view()).mul_acc(s.view(), &mut got.view_mut());
            let err = got
                .iter()
                .zip(want.iter())
                .map(|(g, w)| (g - w).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-5 * k as f32, "B={b} N={n} K={k}: error {err}");
        }
    }
}

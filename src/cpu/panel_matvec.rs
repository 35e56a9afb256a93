//! The step's recurrent product at small batch, `z = s · wᵀ + add` for each row of `s`,
//! over weights packed in `gemm`'s panels (`[K][16]`: per k, 16 rows of `w` side by
//! side).
//!
//! At B = 1 the product reads each weight once, so it runs at the rate the weights
//! stream in from L2 (1 MiB at H = 256). Two things make it ~14 % faster than a dot
//! product per row of the row-major weights (in a probe at H = 256; whole one-thread
//! forwards at B = 1 run 5–20 % faster, BENCHMARKS.md §27):
//! - **one stream**: a row-major walk is 8 streams of 16 cache lines at a time, too short
//!   for the prefetchers to learn; the panels are one sequential stream, and four panels
//!   at a time share each broadcast of `s`;
//! - **a walk that turns around**: each call walks the panels the other way from the
//!   last, so the panels read last (most of L2 when the weights are about its size)
//!   are read first again, from L2 rather than L3.
//!
//! Every output is the same two FMA chains (even and odd k) summed, whichever ISA, group
//! or walk: the bits depend on neither, nor on a split of the panels over threads.

use super::gemm::{Epilogue, NR};
use super::isa::Isa;

/// Batches up to this size use matrix-vector products instead of the GEMM.
pub(crate) const MATVEC_MAX_BATCH: usize = 4;

/// Smallest matrix-vector product (FMAs per batch row) split over two threads: at
/// B = 1 a step is one such product. From H = 256 (262K, ~11 µs) two halves pay a
/// little (S1 with two threads 2.7 → 2.5 ms, BENCHMARKS.md §19); below, the hand-off to
/// the worker (rayon's, when measured) cost about what the half saves.
pub(crate) const MATVEC_SPLIT_FMAS: usize = 1 << 18;

/// Which way a call walks the panels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Walk {
    #[default]
    Forward,
    Backward,
}

impl Walk {
    /// The walk of the step after this one.
    pub fn turned(self) -> Walk {
        match self {
            Walk::Forward => Walk::Backward,
            Walk::Backward => Walk::Forward,
        }
    }
}

/// `z = s · wᵀ` written as `epilogue` says, for the at most [`MATVEC_MAX_BATCH`] rows of
/// `s` `[B, K]` (`z` `[B, N]`, row-major), `w` `[N, K]` as `panels`; from
/// [`MATVEC_SPLIT_FMAS`] a row's panels split in halves over the CPU path's two threads.
pub(crate) fn rows_into(
    isa: Isa,
    panels: &[f32],
    (n, k): (usize, usize),
    s: &[f32],
    z: &mut [f32],
    epilogue: Epilogue,
    walk: Walk,
) {
    let rows = z.len() / n.max(1);
    assert!(rows <= MATVEC_MAX_BATCH && s.len() >= rows * k && z.len() == rows * n);
    let add = |r: usize| match epilogue {
        Epilogue::Accumulate => None,
        Epilogue::AddRow(bias) => Some(&bias[..n]),
        Epilogue::AddMatrix(init) => Some(&init[r * n..(r + 1) * n]),
    };
    let mid = n.div_ceil(NR) / 2;
    if !(super::threads::may_split() && n * k >= MATVEC_SPLIT_FMAS && mid > 0) {
        for (r, zr) in z.chunks_exact_mut(n).enumerate() {
            panels_into(isa, panels, k, &s[r * k..], zr, add(r), walk);
        }
        return;
    }
    // Each row's outputs (and what they add) in two halves at a panel boundary, held in
    // arrays sized for the largest batch that gets here: no allocation in the step loop.
    type Halves<'a> = [(&'a mut [f32], Option<&'a [f32]>); MATVEC_MAX_BATCH];
    let (mut top, mut bottom): (Halves, Halves) = Default::default();
    for (r, zr) in z.chunks_exact_mut(n).enumerate() {
        let (z0, z1) = zr.split_at_mut(mid * NR);
        let (a0, a1) = add(r).map(|a| a.split_at(mid * NR)).unzip();
        (top[r], bottom[r]) = ((z0, a0), (z1, a1));
    }
    let (w0, w1) = panels.split_at(mid * k * NR);
    let half = |w: &[f32], halves: Halves| {
        for (r, (zr, ar)) in halves.into_iter().enumerate().take(rows) {
            panels_into(isa, w, k, &s[r * k..], zr, ar, walk);
        }
    };
    super::threads::join(true, || half(w0, top), || half(w1, bottom));
}

/// `z[c] = Σ_k w[c][k] · s[k] + add[c]` for the `z.len()` rows of `w` whose panels start
/// `panels` (`[K][16]` each, rows past `z.len()` zero); `add: None` adds `z` itself.
pub(crate) fn panels_into(
    isa: Isa,
    panels: &[f32],
    k: usize,
    s: &[f32],
    z: &mut [f32],
    add: Option<&[f32]>,
    walk: Walk,
) {
    let count = z.len().div_ceil(NR);
    assert!(panels.len() >= count * k * NR && s.len() >= k);
    assert!(add.is_none_or(|a| a.len() >= z.len()));
    assert!(isa.available(), "this CPU has no {isa:?}");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has `isa` (asserted), and the bounds are checked above.
    unsafe {
        match isa {
            Isa::Avx512 => {
                let groups: (Group, Group) = (group_avx512::<4>, group_avx512::<1>);
                walk_groups::<4>(groups, panels, k, s, z, add, walk)
            }
            Isa::Avx2 => {
                let groups: (Group, Group) = (group_avx2::<2>, group_avx2::<1>);
                walk_groups::<2>(groups, panels, k, s, z, add, walk)
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("packed weights exist only on x86_64 with AVX2");
}

/// The `u`-th of the `units` panel groups of a call in the order of `walk`, as
/// `(first panel, panels)`: groups of `per` panels, then the rest one by one.
fn group(u: usize, count: usize, per: usize, walk: Walk) -> (usize, usize) {
    let (whole, units) = (count / per, count / per + count % per);
    let u = match walk {
        Walk::Forward => u,
        Walk::Backward => units - 1 - u,
    };
    match u < whole {
        true => (u * per, per),
        false => (whole * per + (u - whole), 1),
    }
}

/// How many groups [`group`] numbers.
fn units(count: usize, per: usize) -> usize {
    count / per + count % per
}

/// Where a group writes: its first output, the matching `add`, and the valid columns of
/// the call's last panel (16 elsewhere).
#[derive(Clone, Copy)]
struct Out {
    z: *mut f32,
    add: *const f32,
    /// Outputs in the whole call (`z.len()`), and the group's first output.
    len: usize,
    at: usize,
}

impl Out {
    /// Valid columns of panel `i` of the group.
    fn cols(&self, i: usize) -> usize {
        NR.min(self.len - self.at - i * NR)
    }
}

/// `P` panels from `w`: per panel an even-k and an odd-k chain of 512-bit FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn group_avx512<const P: usize>(w: *const f32, k: usize, s: *const f32, out: Out) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; P];
    let row = |i: usize, kk: usize| w.add((i * k + kk) * NR);
    for k0 in (0..k / 2 * 2).step_by(2) {
        let (x0, x1) = (_mm512_set1_ps(*s.add(k0)), _mm512_set1_ps(*s.add(k0 + 1)));
        // Each panel's lines 24 rows ahead into L1: 10 % off S1 on a CPU whose L1
        // prefetcher trails four streams from L2 (BENCHMARKS.md §32; 12 ahead the same,
        // 64 slower).
        for i in 0..P {
            _mm_prefetch::<_MM_HINT_T0>(row(i, (k0 + 24).min(k - 1)) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(row(i, (k0 + 25).min(k - 1)) as *const i8);
        }
        for (i, a) in acc.iter_mut().enumerate() {
            a[0] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(row(i, k0)), a[0]);
            a[1] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(row(i, k0 + 1)), a[1]);
        }
    }
    if k % 2 == 1 {
        let x = _mm512_set1_ps(*s.add(k - 1));
        for (i, a) in acc.iter_mut().enumerate() {
            a[0] = _mm512_fmadd_ps(x, _mm512_loadu_ps(row(i, k - 1)), a[0]);
        }
    }
    for (i, a) in acc.iter().enumerate() {
        let lanes = super::gemm_kernels::lanes(out.cols(i));
        let add = _mm512_maskz_loadu_ps(lanes, out.add.add(i * NR));
        let sum = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), add);
        _mm512_mask_storeu_ps(out.z.add(i * NR), lanes, sum);
    }
}

/// A group kernel: `P` panels from `w` (`[K][16]` each) times `s`, into `out`.
#[cfg(target_arch = "x86_64")]
type Group = unsafe fn(*const f32, usize, *const f32, Out);

/// The walk over the panels in groups of `G` (`full`; a last single panel `one`): AVX-512
/// four panels a group, AVX2 two (8 accumulators of its 16 registers).
#[cfg(target_arch = "x86_64")]
unsafe fn walk_groups<const G: usize>(
    (full, one): (Group, Group),
    w: &[f32],
    k: usize,
    s: &[f32],
    z: &mut [f32],
    a: Option<&[f32]>,
    walk: Walk,
) {
    let len = z.len();
    let add = a.map_or(z.as_ptr(), |a| a.as_ptr());
    let count_all = len.div_ceil(NR);
    for u in 0..units(count_all, G) {
        let (p, count) = group(u, count_all, G, walk);
        let out = Out {
            z: z.as_mut_ptr().add(p * NR),
            add: add.add(p * NR),
            len,
            at: p * NR,
        };
        let kernel = if count == G { full } else { one };
        kernel(w.as_ptr().add(p * k * NR), k, s.as_ptr(), out);
    }
}

/// [`group_avx512`] in two 256-bit halves per panel: the same FMAs lane by lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn group_avx2<const P: usize>(w: *const f32, k: usize, s: *const f32, out: Out) {
    use std::arch::x86_64::*;
    // acc[panel][half][phase]
    let mut acc = [[[_mm256_setzero_ps(); 2]; 2]; P];
    let row = |i: usize, kk: usize, half: usize| w.add((i * k + kk) * NR + half * 8);
    for k0 in (0..k / 2 * 2).step_by(2) {
        let (x0, x1) = (_mm256_set1_ps(*s.add(k0)), _mm256_set1_ps(*s.add(k0 + 1)));
        for (i, a) in acc.iter_mut().enumerate() {
            for (half, h) in a.iter_mut().enumerate() {
                h[0] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(row(i, k0, half)), h[0]);
                h[1] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(row(i, k0 + 1, half)), h[1]);
            }
        }
    }
    if k % 2 == 1 {
        let x = _mm256_set1_ps(*s.add(k - 1));
        for (i, a) in acc.iter_mut().enumerate() {
            for (half, h) in a.iter_mut().enumerate() {
                h[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(row(i, k - 1, half)), h[0]);
            }
        }
    }
    for (i, a) in acc.iter().enumerate() {
        let mut sums = [0.0f32; NR];
        for (half, h) in a.iter().enumerate() {
            _mm256_storeu_ps(sums.as_mut_ptr().add(half * 8), _mm256_add_ps(h[0], h[1]));
        }
        for (c, v) in sums.iter().enumerate().take(out.cols(i)) {
            *out.z.add(i * NR + c) = v + *out.add.add(i * NR + c);
        }
    }
}

#[cfg(test)]
#[path = "panel_matvec_tests.rs"]
mod tests;

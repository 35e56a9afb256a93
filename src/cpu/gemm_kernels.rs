//! The micro-kernels of `gemm.rs`: `M` rows of `s` times one packed `[K][16]` panel
//! (AVX2 + FMA: two 256-bit accumulators a row) or, with AVX-512, a pair of panels (two
//! 512-bit accumulators a row). Every output is one chain of FMAs over k in order from
//! zero, then `+ add`: the same bits whatever the kernel.

/// Rows of `w` (columns of `z`) per panel.
pub(crate) const NR: usize = 16;
/// Rows of `s` per AVX2 micro-kernel call.
pub(super) const MR: usize = 6;

/// Where a micro-kernel call writes its `M × 16` (or `M × 32`) sums: `z[r·n + c] =
/// sum + add[r·add_stride + c]` for its rows r and the first `cols` columns of its
/// panels. The callers check the bounds (`add` may be `z` itself).
#[derive(Clone, Copy)]
pub(super) struct Dest {
    pub z: *mut f32,
    pub n: usize,
    pub add: *const f32,
    pub add_stride: usize,
    /// Up to 16, or 32 for a pair of panels.
    pub cols: usize,
    /// The panels to prefetch into L2, line by line as this one (or pair) is read: the
    /// next one, and for a pair the one after it.
    pub next: [*const f32; 2],
    /// Whether to prefetch `next` (the first call on these panels; the pair kernel).
    pub prefetch: bool,
}

/// Rows for the next micro-kernel call with `left` rows to go. With AVX-512 (`WIDE`),
/// calls of equal size of at most 14 rows. With AVX2 a call of M rows keeps 2M
/// accumulators; the FMA units need 8 in flight (2 pipes × 4 cycles of latency), so
/// calls of 1–3 rows run at their latency, not the FMA rate, and a tail of 7–9 rows goes
/// as 4 + 3, 4 + 4 or 5 + 4 rather than 6 + 1, 6 + 2 or 6 + 3 (S4, 32 rows: 1.5 %
/// faster).
pub(super) fn kernel_rows<const WIDE: bool>(left: usize) -> usize {
    if WIDE {
        // Calls of equal size, at most WIDE_MR rows each.
        return left.div_ceil(left.div_ceil(WIDE_MR));
    }
    match left {
        7 | 8 => 4,
        9 => 5,
        _ => left.min(MR),
    }
}

/// Rows of `s` per AVX-512 call: 28 accumulators over a pair of panels (with the two
/// panel loads and a broadcast, 31 of the 32 registers; 12 rows measured the same
/// within 2–4 %, BENCHMARKS.md §32).
const WIDE_MR: usize = 14;

/// The most floats one micro-kernel call writes (`WIDE_MR` rows of a pair of panels).
pub(super) const TILE_FLOATS: usize = WIDE_MR * 2 * NR;

thread_local! {
    /// [`pack_calls`]'s output, kept between products (one per thread).
    pub(super) static PACKED_ROWS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Rows `s` (`[rows, k]`, row-major) as the AVX-512 kernels read them: for each call of
/// [`kernel_rows`] rows in turn, a `[k][M]` block, so that a call's broadcasts come from
/// one line at constant offsets (as BLAS packs its A operand). Same values, same order
/// of the sums: the same bits. Every float of `out` (as long as `s`) is written.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_calls(s: &[f32], k: usize, out: &mut [f32]) {
    assert_eq!(out.len(), s.len());
    let rows = s.len() / k.max(1);
    let mut r0 = 0;
    while r0 < rows {
        let m = kernel_rows::<true>(rows - r0);
        pack_call(
            &s[r0 * k..(r0 + m) * k],
            k,
            m,
            &mut out[r0 * k..(r0 + m) * k],
        );
        r0 += m;
    }
}

/// One call's `m` (≤ 16) rows `[m, k]` into `block` `[k][m]`: a gather of one column of
/// the rows per k (a scalar copy of each float, column-strided stores, had taken 7 % of
/// a one-thread training epoch; BENCHMARKS.md §33).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_call(rows: &[f32], k: usize, m: usize, block: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(m <= NR && rows.len() == m * k && block.len() == m * k && k < (i32::MAX as usize) / NR);
    let row_starts = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(k as i32),
    );
    let lanes = lanes(m);
    for kk in 0..k {
        let column = rows.as_ptr().add(kk);
        let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), lanes, row_starts, column);
        _mm512_mask_storeu_ps(block.as_mut_ptr().add(kk * m), lanes, v);
    }
}

/// The micro-kernel of `M` rows: if `WIDE` [`kernel_avx512_pair`] for a pair of panels
/// (`panel` holds two) or [`kernel_avx512`] for one, else [`kernel`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn tile<const M: usize, const WIDE: bool>(
    panel: &[f32],
    s: &[f32],
    k: usize,
    dest: Dest,
) {
    match (WIDE, dest.cols > NR) {
        (true, true) => kernel_avx512_pair::<M>(panel, s, k, dest),
        (true, false) => kernel_avx512::<M>(panel, s, k, dest),
        (false, _) => kernel::<M>(panel, s, k, dest),
    }
}

/// `M` rows of `s` (row stride `k`) times one `[K][16]` panel, the `M × 16` sums
/// written to `dest` from registers (through a buffer only for a panel's partial last
/// columns).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel<const M: usize>(panel: &[f32], s: &[f32], k: usize, dest: Dest) {
    use std::arch::x86_64::*;
    assert!(panel.len() >= k * NR && s.len() >= (M - 1) * k + k);
    let mut acc = [[_mm256_setzero_ps(); 2]; M];
    let pp = panel.as_ptr();
    let sp = s.as_ptr();
    for kk in 0..k {
        // One line of the next panel per line of this one: at K = 1024 a panel (64 KiB)
        // comes from L3 or memory, and the first rows' call stalled on it (a quarter of
        // the samples at DB H = 1024 B = 16); fetched ahead, it is in L2 when its turn
        // comes (that shape 112 → 86 ms, BENCHMARKS.md §20).
        _mm_prefetch::<_MM_HINT_T1>(dest.next[0].add(kk * NR) as *const i8);
        let b0 = _mm256_loadu_ps(pp.add(kk * NR));
        let b1 = _mm256_loadu_ps(pp.add(kk * NR + 8));
        for (r, a) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*sp.add(r * k + kk));
            a[0] = _mm256_fmadd_ps(x, b0, a[0]);
            a[1] = _mm256_fmadd_ps(x, b1, a[1]);
        }
    }
    for (r, a) in acc.iter().enumerate() {
        let (zp, ap) = (dest.z.add(r * dest.n), dest.add.add(r * dest.add_stride));
        if dest.cols == NR {
            _mm256_storeu_ps(zp, _mm256_add_ps(a[0], _mm256_loadu_ps(ap)));
            _mm256_storeu_ps(zp.add(8), _mm256_add_ps(a[1], _mm256_loadu_ps(ap.add(8))));
            continue;
        }
        let mut sums = [0.0f32; NR];
        _mm256_storeu_ps(sums.as_mut_ptr(), a[0]);
        _mm256_storeu_ps(sums.as_mut_ptr().add(8), a[1]);
        for (c, v) in sums.iter().enumerate().take(dest.cols) {
            *zp.add(c) = v + *ap.add(c);
        }
    }
}

/// [`kernel`] with a row of sums in one 512-bit register, reading `s` packed
/// ([`pack_calls`]): the same FMAs in the same order, so the same bits. It takes the
/// last panel of an odd count ([`kernel_avx512_pair`] the rest). A partial last panel
/// is written through a lane mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn kernel_avx512<const M: usize>(panel: &[f32], s: &[f32], k: usize, dest: Dest) {
    use std::arch::x86_64::*;
    assert!(panel.len() >= k * NR && s.len() >= (M - 1) * k + k);
    let mut acc = [_mm512_setzero_ps(); M];
    let pp = panel.as_ptr();
    let sp = s.as_ptr();
    for kk in 0..k {
        // As in `kernel`: the next panel, line by line, into L2.
        _mm_prefetch::<_MM_HINT_T1>(dest.next[0].add(kk * NR) as *const i8);
        let b = _mm512_loadu_ps(pp.add(kk * NR));
        for (r, a) in acc.iter_mut().enumerate() {
            *a = _mm512_fmadd_ps(_mm512_set1_ps(*sp.add(kk * M + r)), b, *a);
        }
    }
    let lanes = lanes(dest.cols);
    for (r, a) in acc.iter().enumerate() {
        let (zp, ap) = (dest.z.add(r * dest.n), dest.add.add(r * dest.add_stride));
        let sum = _mm512_add_ps(*a, _mm512_maskz_loadu_ps(lanes, ap));
        _mm512_mask_storeu_ps(zp, lanes, sum);
    }
}

/// [`kernel_avx512`] over two panels at once: `M` rows × 32 columns, 2M accumulators.
/// A CPU with two 512-bit FMA pipes of 4 cycles' latency wants 8 or more chains in
/// flight and fewer loads per FMA than one panel's 6 rows give (BENCHMARKS.md §32: a
/// third less time at S3 and S4 on such a CPU). The second panel may be partial.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn kernel_avx512_pair<const M: usize>(panel: &[f32], s: &[f32], k: usize, dest: Dest) {
    use std::arch::x86_64::*;
    assert!(panel.len() >= 2 * k * NR && s.len() >= (M - 1) * k + k && dest.cols > NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    let (pa, pb) = (panel.as_ptr(), panel.as_ptr().add(k * NR));
    let sp = s.as_ptr();
    for kk in 0..k {
        if dest.prefetch {
            for next in dest.next {
                _mm_prefetch::<_MM_HINT_T1>(next.add(kk * NR) as *const i8);
            }
        }
        let (b0, b1) = (
            _mm512_loadu_ps(pa.add(kk * NR)),
            _mm512_loadu_ps(pb.add(kk * NR)),
        );
        for (r, a) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*sp.add(kk * M + r));
            a[0] = _mm512_fmadd_ps(x, b0, a[0]);
            a[1] = _mm512_fmadd_ps(x, b1, a[1]);
        }
    }
    let second = lanes(dest.cols - NR);
    for (r, a) in acc.iter().enumerate() {
        let (zp, ap) = (dest.z.add(r * dest.n), dest.add.add(r * dest.add_stride));
        _mm512_storeu_ps(zp, _mm512_add_ps(a[0], _mm512_loadu_ps(ap)));
        let sum = _mm512_add_ps(a[1], _mm512_maskz_loadu_ps(second, ap.add(NR)));
        _mm512_mask_storeu_ps(zp.add(NR), second, sum);
    }
}

/// The lane mask of a panel's first `cols` (1 to 16) columns.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn lanes(cols: usize) -> std::arch::x86_64::__mmask16 {
    match cols {
        NR => !0,
        _ => (1 << cols) - 1,
    }
}

//! `z += s · wᵀ` for the recurrent product of the CPU step, with `w` packed once per
//! layer-direction instead of once per step.
//!
//! A general GEMM (ndarray's) packs both operands on every call; here the weights are
//! the same for all T steps, so they are laid out once in panels of 16 rows of `w`
//! (`[K][16]` each, the layout the micro-kernel streams), and each step only runs the
//! micro-kernels over them (`gemm_kernels.rs`): with AVX2 + FMA 6 rows × 16 columns,
//! 12 accumulators, per k two loads of the panel and six broadcasts of `s` for 12 FMAs;
//! with AVX-512 up to 14 rows × a pair of panels, 28 accumulators, from `s` packed call
//! by call. Every output is summed in the same order either way: the same bits.
//! Without AVX2 + FMA, ndarray's GEMM.

use std::borrow::Cow;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2};

pub(crate) use super::gemm_kernels::NR;
use super::gemm_kernels::{kernel_rows, pack_calls, tile, Dest, MR, PACKED_ROWS};
use super::isa::Isa;

/// Rows of `s` per pass over all panels (rounded up to [`MR`]): 256 rows of a 1024-wide
/// `s` (1 MiB, packed) stay in a 2 MiB L2 while every panel streams past them. (120
/// before BENCHMARKS.md §33: a step of 128 rows then took two passes over the weights;
/// S3 0.98, S4 0.99 with 256 on that Intel host's 2 MiB L2. A CPU with 1–1.25 MiB of L2
/// per core may want fewer.)
const MC: usize = 256;

thread_local! {
    /// Whether this thread's next row block walks the panels down (last to first). It
    /// turns at every block, so that a block starts on the panels the one before it
    /// ended on, still in L2: weights larger than L2 (H = 512: 4 MiB) then come from L3
    /// about an L2's worth less per step (BENCHMARKS.md §33). The order of the panels
    /// does not change a bit of the product. One turn per thread, not per matrix: a
    /// step with two products (Full peepholes: `W_hh`, then `W_ch`) walks each the same
    /// way every step, and gains nothing.
    static WALK_BACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How [`PackedWeights::mul`] writes the product `s · wᵀ` into `z`.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// `z += s · wᵀ`.
    Accumulate,
    /// `z = s · wᵀ + bias` on every row (`bias` `[N]`): the input projection.
    AddRow(&'a [f32]),
    /// `z = s · wᵀ + init` (`init` `[B, N]` row-major, like `z`): the step's recurrent
    /// product on top of its input projection, without copying the projection first.
    AddMatrix(&'a [f32]),
}

/// `w` `[N, K]` ready for [`PackedWeights::mul`] (the default: `0 × 0`, to repack).
#[derive(Default)]
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
        Self::from_blocks(&[w])
    }

    /// The rows of `blocks` (same width), one after the other, packed as one matrix
    /// without gathering them first (a hidden-unit half of a layer's weights is four
    /// blocks of rows, one per gate).
    pub fn from_blocks(blocks: &[ArrayView2<f32>]) -> PackedWeights {
        let mut packed = PackedWeights::default();
        packed.repack(blocks);
        packed
    }

    /// [`PackedWeights::from_blocks`] into this one's memory (a loop packing one chunk
    /// after another allocates once).
    pub fn repack(&mut self, blocks: &[ArrayView2<f32>]) {
        let k = blocks.first().map_or(0, |b| b.ncols());
        let rows: Vec<_> = blocks.iter().flat_map(|b| b.rows()).collect();
        let n = rows.len();
        (self.n, self.k) = (n, k);
        if !Isa::Avx2.available() {
            self.fallback = Some(Array2::from_shape_fn((n, k), |(r, kk)| rows[r][kk]));
            return;
        }
        let len = n.div_ceil(NR) * k * NR;
        // The transpose of a row-major matrix, or of a block of its columns (`W_hhᵀ` in
        // the backward, `dZᵀ` in the weight gradients): each k of a panel is 16
        // contiguous floats of one of its rows.
        let transposed: Option<Vec<&[f32]>> = match blocks {
            [b] => {
                let t = b.reversed_axes();
                let row = |kk| t.index_axis_move(ndarray::Axis(0), kk).to_slice();
                (0..k).map(row).collect()
            }
            _ => None,
        };
        if let Some(t) = transposed {
            // Every float is written: no zeroing first.
            self.panels.resize(len, 0.0);
            pack_transposed(&mut self.panels[..len], &t, n);
            return;
        }
        self.panels.clear();
        self.panels.resize(len, 0.0);
        let panels = self.panels.chunks_exact_mut((k * NR).max(1));
        // Rows of their own (copied first where strided): 16 side by side, k by k.
        let rows: Vec<Cow<[f32]>> = rows
            .iter()
            .map(|r| {
                r.to_slice()
                    .map_or_else(|| Cow::Owned(r.to_vec()), Cow::Borrowed)
            })
            .collect();
        for (group, panel) in rows.chunks(NR).zip(panels) {
            for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
                dst.iter_mut().zip(group).for_each(|(d, r)| *d = r[kk]);
            }
        }
    }

    /// `z += s · wᵀ`: `s` `[B, K]`, `z` `[B, N]` (row-major).
    pub fn mul_acc(&self, s: ArrayView2<f32>, z: &mut ArrayViewMut2<f32>) {
        self.mul(s, z, Epilogue::Accumulate);
    }

    /// `s · wᵀ` written into `z` as `epilogue` says: `s` `[B, K]`, `z` `[B, N]`
    /// (row-major). Each row of `z` is summed the same way whatever `B` is, so splitting
    /// the rows (over threads, or over time steps) does not change a bit.
    pub fn mul(&self, s: ArrayView2<f32>, z: &mut ArrayViewMut2<f32>, epilogue: Epilogue) {
        self.mul_on(Isa::best().unwrap_or(Isa::Avx2), s, z, epilogue);
    }

    /// The panels, `N` and `K` (`None` on a CPU without AVX2 + FMA: no panels).
    pub fn panels(&self) -> Option<(&[f32], usize, usize)> {
        self.fallback
            .is_none()
            .then_some((&self.panels[..], self.n, self.k))
    }

    /// [`PackedWeights::mul`] on the micro-kernel of `isa` (every [`Isa`] gives the
    /// same bits; the tests compare them). Panics if the CPU lacks `isa`.
    fn mul_on(&self, isa: Isa, s: ArrayView2<f32>, z: &mut ArrayViewMut2<f32>, epilogue: Epilogue) {
        assert_eq!(s.ncols(), self.k, "operand width");
        assert_eq!(z.ncols(), self.n, "output width");
        assert_eq!(s.nrows(), z.nrows(), "batch");
        if let Some(w) = &self.fallback {
            fallback_mul(s, w, z, epilogue);
            return;
        }
        assert!(isa.available(), "this CPU has no {isa:?}");
        let s = s.as_standard_layout();
        let ss = s.as_slice().expect("standard layout");
        let zs = z.as_slice_mut().expect("z is standard layout");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `panels` is only filled (fallback None) when the CPU has AVX2 and FMA,
        // and `isa` is one the CPU has (asserted above).
        unsafe {
            match isa {
                Isa::Avx512 => self.mul_avx512(ss, zs, epilogue),
                Isa::Avx2 => self.mul_avx2(ss, zs, epilogue),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("packed weights exist only on x86_64 with AVX2");
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_avx2(&self, s: &[f32], z: &mut [f32], epilogue: Epilogue) {
        self.row_blocks::<false>(s, z, epilogue);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mul_avx512(&self, s: &[f32], z: &mut [f32], epilogue: Epilogue) {
        self.row_blocks::<true>(s, z, epilogue);
    }

    /// The product in blocks of rows, each block against every panel; `WIDE`: the
    /// AVX-512 micro-kernel (inlined into the caller that has its features).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn row_blocks<const WIDE: bool>(&self, s: &[f32], z: &mut [f32], epilogue: Epilogue) {
        let n = self.n;
        let rows = z.len() / n;
        // Blocks of about MC rows (at most MC rounded up to the AVX2 kernel's rows), of
        // equal size: a short last block would stream all the weights again for a few
        // rows.
        let block = rows.div_ceil(rows.div_ceil(MC).max(1)).next_multiple_of(MR);
        let mut packed = PACKED_ROWS.take();
        for chunk in (0..rows).step_by(block.max(1)) {
            let chunk_end = (chunk + block).min(rows);
            // AVX-512 reads the block's rows of `s` packed call by call, k-major
            // (`pack_calls`), and takes the panels in pairs (`kernel_avx512_pair`).
            let rows_of_s = match WIDE {
                true => {
                    pack_calls(&s[chunk * self.k..chunk_end * self.k], self.k, &mut packed);
                    &packed[..(chunk_end - chunk) * self.k]
                }
                false => &s[chunk * self.k..],
            };
            // Panel by panel (pair by pair) up or down, as WALK_BACK says (a loop, not
            // a closure: the kernels inline only into the AVX-512 caller).
            let back = WALK_BACK.replace(!WALK_BACK.get());
            let (step, starts) = (
                1 + WIDE as usize,
                n.div_ceil(NR).div_ceil(1 + WIDE as usize),
            );
            for i in 0..starts {
                let p = step * if back { starts - 1 - i } else { i };
                self.panel_rows::<WIDE>(p, back, chunk..chunk_end, rows_of_s, z, epilogue);
            }
        }
        PACKED_ROWS.set(packed);
    }

    /// Rows `range` of `z` from those rows of `s` (`rows_of_s`, from the first of them:
    /// row-major, or packed if `WIDE`) times panel `p` (`WIDE`: and panel p + 1 if there
    /// is one), prefetching the panels that come next on a walk down (`back`) or up.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn panel_rows<const WIDE: bool>(
        &self,
        p: usize,
        back: bool,
        range: std::ops::Range<usize>,
        s: &[f32],
        z: &mut [f32],
        epilogue: Epilogue,
    ) {
        let (n, k) = (self.n, self.k);
        let last = n.div_ceil(NR) - 1;
        let pair = WIDE && p < last;
        let panel = &self.panels[p * k * NR..(p + 1 + pair as usize) * k * NR];
        let cols = (NR << pair as usize).min(n - p * NR);
        // The panels the walk takes next, fetched while this one (or pair) is used.
        let step = 1 + WIDE as usize;
        let next = match back {
            false => [step, step + pair as usize].map(|i| (p + i).min(last)),
            true => [step, 1].map(|i| p.saturating_sub(i)),
        };
        let next = next.map(|q| self.panels[q * k * NR..].as_ptr());
        let mut r0 = range.start;
        while r0 < range.end {
            let mr = kernel_rows::<WIDE>(range.end - r0);
            let at = r0 * n + p * NR;
            assert!(z.len() >= (r0 + mr - 1) * n + p * NR + cols);
            // z = sum + add, where Accumulate adds z itself (z + sum: the same bits; one
            // pointer for both, so the read does not alias a second borrow).
            let zp = z[at..].as_mut_ptr();
            let (add, add_stride) = match epilogue {
                Epilogue::Accumulate => (zp.cast_const(), n),
                Epilogue::AddRow(bias) => (bias[p * NR..][..cols].as_ptr(), 0),
                Epilogue::AddMatrix(init) => (init[..z.len()][at..].as_ptr(), n),
            };
            let dest = Dest {
                z: zp,
                n,
                add,
                add_stride,
                cols,
                next,
                prefetch: r0 == range.start,
            };
            // Call by call, a packed block holds as many floats as its rows.
            let s = &s[(r0 - range.start) * k..];
            // Calls over 6 rows are AVX-512's only (no AVX2 kernel of 7–14 rows is built).
            match mr {
                14 => tile::<14, true>(panel, s, k, dest),
                13 => tile::<13, true>(panel, s, k, dest),
                12 => tile::<12, true>(panel, s, k, dest),
                11 => tile::<11, true>(panel, s, k, dest),
                10 => tile::<10, true>(panel, s, k, dest),
                9 => tile::<9, true>(panel, s, k, dest),
                8 => tile::<8, true>(panel, s, k, dest),
                7 => tile::<7, true>(panel, s, k, dest),
                6 => tile::<6, WIDE>(panel, s, k, dest),
                5 => tile::<5, WIDE>(panel, s, k, dest),
                4 => tile::<4, WIDE>(panel, s, k, dest),
                3 => tile::<3, WIDE>(panel, s, k, dest),
                2 => tile::<2, WIDE>(panel, s, k, dest),
                _ => tile::<1, WIDE>(panel, s, k, dest),
            }
            r0 += mr;
        }
    }
}

/// Panels `[N/16][K][16]` from the `K` rows `t` (each `[N]` or longer) of a transpose,
/// rows past `N` zero. In blocks of [`PACK_K_BLOCK`] rows of `t`, each across every
/// panel: panel by panel, every row of `t` (a page each for `dZ`'s 1024-wide rows) was
/// touched once per panel (a 512 × 1024 chunk of the seed model's `dZ`: 283 → 183 µs,
/// BENCHMARKS.md §33).
fn pack_transposed(panels: &mut [f32], t: &[&[f32]], n: usize) {
    let k = t.len();
    let panel_len = (k * NR).max(1);
    for k0 in (0..k).step_by(PACK_K_BLOCK) {
        let k1 = (k0 + PACK_K_BLOCK).min(k);
        for (p, panel) in panels.chunks_exact_mut(panel_len).enumerate() {
            let cols = NR.min(n - p * NR);
            let dst = panel[k0 * NR..k1 * NR].chunks_exact_mut(NR);
            for (dst, src) in dst.zip(&t[k0..k1]) {
                match cols {
                    // A constant length: two vector moves, not a call to memcpy.
                    NR => dst.copy_from_slice(&src[p * NR..p * NR + NR]),
                    _ => {
                        dst[..cols].copy_from_slice(&src[p * NR..][..cols]);
                        dst[cols..].fill(0.0);
                    }
                }
            }
        }
    }
}

/// Rows of a transpose per block of [`pack_transposed`].
const PACK_K_BLOCK: usize = 16;

/// [`PackedWeights::mul`] through ndarray's GEMM, for CPUs without AVX2 + FMA.
fn fallback_mul(s: ArrayView2<f32>, w: &Array2<f32>, z: &mut ArrayViewMut2<f32>, e: Epilogue) {
    let n = w.nrows();
    match e {
        Epilogue::Accumulate => {}
        Epilogue::AddRow(bias) => z.assign(&ArrayView1::from(&bias[..n])),
        Epilogue::AddMatrix(init) => {
            z.assign(&ArrayView2::from_shape(z.dim(), init).expect("[B, N]"))
        }
    }
    general_mat_mul(1.0, &s, &w.t(), 1.0, z);
}

#[cfg(test)]
#[path = "gemm_tests.rs"]
pub(super) mod tests;

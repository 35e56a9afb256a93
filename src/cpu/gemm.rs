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

use super::isa::Isa;
#[path = "gemm_blocks.rs"]
mod blocks;
#[cfg(test)]
use blocks::WALK_BACK;

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

/// A step's input projection, for [`PackedWeights::mul_projecting`]: `x` `[B, I]`
/// (row-major) through `w_ih` `[N, I]`, packed, plus `bias` `[N]`.
#[derive(Clone, Copy)]
pub(crate) struct InputProjection<'a> {
    pub x: &'a [f32],
    pub w_ih: &'a PackedWeights,
    pub bias: &'a [f32],
}

/// The left operands of one row block, as its micro-kernel calls read them (packed with
/// AVX-512): rows of `s`, and a projection with its rows of `x`.
#[derive(Clone, Copy)]
struct BlockRows<'a> {
    s: &'a [f32],
    projection: Option<InputProjection<'a>>,
}

/// One k of a panel: its 16 floats, aligned to a cache line. In a `Vec<f32>` (16-byte
/// aligned) every 512-bit load of a panel straddled two lines (BENCHMARKS.md §34).
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct PanelLine([f32; NR]);

/// `w` `[N, K]` ready for [`PackedWeights::mul`] (the default: `0 × 0`, to repack).
#[derive(Default)]
pub(crate) struct PackedWeights {
    n: usize,
    k: usize,
    /// `ceil(N / 16)` panels of `[K][16]`, rows past N zero ([`PackedWeights::floats`]).
    panels: Vec<PanelLine>,
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
            self.panels.resize(len / NR, PanelLine::default());
            pack_transposed(self.floats_mut(), &t, n);
            return;
        }
        self.panels.clear();
        self.panels.resize(len / NR, PanelLine::default());
        let panels = self.floats_mut().chunks_exact_mut((k * NR).max(1));
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
        self.mul_on(Isa::best().unwrap_or(Isa::Avx2), s, z, epilogue, None);
    }

    /// `z = s · wᵀ + (x · w_ihᵀ + bias)` for `projection`: the same bits as the
    /// projection written first ([`Epilogue::AddRow`]) and then added
    /// ([`Epilogue::AddMatrix`]), but tile by tile, each tile's projection through a
    /// buffer in L1: the projection never goes through memory, nor pushes the weights
    /// out of L2 (BENCHMARKS.md §34).
    pub fn mul_projecting(
        &self,
        s: ArrayView2<f32>,
        z: &mut ArrayViewMut2<f32>,
        projection: InputProjection,
    ) {
        let isa = Isa::best().unwrap_or(Isa::Avx2);
        self.mul_on(isa, s, z, Epilogue::Accumulate, Some(projection));
    }

    /// The panels' floats, `[N/16][K][16]`.
    fn floats(&self) -> &[f32] {
        bytemuck::cast_slice(&self.panels)
    }

    fn floats_mut(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(&mut self.panels)
    }

    /// `K`, the width of the rows packed.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The panels, `N` and `K` (`None` on a CPU without AVX2 + FMA: no panels).
    pub fn panels(&self) -> Option<(&[f32], usize, usize)> {
        self.fallback
            .is_none()
            .then_some((self.floats(), self.n, self.k))
    }

    /// [`PackedWeights::mul`] on the micro-kernel of `isa` (every [`Isa`] gives the
    /// same bits; the tests compare them). Panics if the CPU lacks `isa`.
    /// `projection`, if given, replaces `epilogue` ([`PackedWeights::mul_projecting`]).
    fn mul_on(
        &self,
        isa: Isa,
        s: ArrayView2<f32>,
        z: &mut ArrayViewMut2<f32>,
        epilogue: Epilogue,
        projection: Option<InputProjection>,
    ) {
        assert_eq!(s.ncols(), self.k, "operand width");
        assert_eq!(z.ncols(), self.n, "output width");
        assert_eq!(s.nrows(), z.nrows(), "batch");
        if let Some(p) = projection {
            assert_eq!(p.w_ih.n, self.n, "projection width");
            assert_eq!(p.x.len(), z.nrows() * p.w_ih.k, "projection input");
            assert!(p.bias.len() >= self.n, "projection bias");
        }
        if let Some(w) = &self.fallback {
            fallback_mul(s, w, z, epilogue, projection);
            return;
        }
        assert!(isa.available(), "this CPU has no {isa:?}");
        let s = s.as_standard_layout();
        let ss = s.as_slice().expect("standard layout");
        let zs = z.as_slice_mut().expect("z is standard layout");
        let rows = BlockRows { s: ss, projection };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `panels` is only filled (fallback None) when the CPU has AVX2 and FMA
        // (and then `w_ih`'s too), and `isa` is one the CPU has (asserted above).
        unsafe {
            match isa {
                Isa::Avx512 => self.mul_avx512(rows, zs, epilogue),
                Isa::Avx2 => self.mul_avx2(rows, zs, epilogue),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("packed weights exist only on x86_64 with AVX2");
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_avx2(&self, s: BlockRows, z: &mut [f32], epilogue: Epilogue) {
        self.row_blocks::<false>(s, z, epilogue);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mul_avx512(&self, s: BlockRows, z: &mut [f32], epilogue: Epilogue) {
        self.row_blocks::<true>(s, z, epilogue);
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
fn fallback_mul(
    s: ArrayView2<f32>,
    w: &Array2<f32>,
    z: &mut ArrayViewMut2<f32>,
    e: Epilogue,
    projection: Option<InputProjection>,
) {
    let n = w.nrows();
    if let Some(p) = projection {
        let x = ArrayView2::from_shape((z.nrows(), p.w_ih.k), p.x).expect("[B, I]");
        let w_ih = p
            .w_ih
            .fallback
            .as_ref()
            .expect("packed without AVX2, as `w`");
        fallback_mul(x, w_ih, z, Epilogue::AddRow(p.bias), None);
    }
    match e {
        _ if projection.is_some() => {}
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

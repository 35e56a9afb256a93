//! `dZᵀ · A` for the weight gradients (`A` = the layer's inputs, `h_{t-1}`, `c_{t-1}`,
//! each `[T·B, n]`): sums over all T·B rows, through the packed kernel.
//!
//! Through ndarray's GEMM, which packs the transposed `dZ` (strided) on every call, the
//! weight gradients were 36 % of the seed model's training step (its kernel 28 %, its
//! packing 8 %; BENCHMARKS.md §20). Here `dZ` is packed once per chunk of
//! [`CHUNK_ROWS`] rows for all the `A`s at once (`dZᵀ` as the kernel's weights: 16 of
//! its columns per panel, read 16 contiguous floats at a time), the `A`s transposed
//! beside each other are the kernel's rows, and the chunks' products accumulate in k
//! order. Two threads split `dZ`'s columns: each packs and multiplies its own half.

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2};

use super::aligned;
use super::gemm::{Epilogue, PackedWeights, NR as PANEL};

/// Rows of `dZ` (time steps × batch) per packed chunk: `[512][16]` panels (32 KiB, with
/// the kernel's prefetch of the next one).
const CHUNK_ROWS: usize = 512;

/// `dzᵀ · a` `[N, n_a]` for each `a` `[R, n_a]` in `rights`, `dz` `[R, N]`. With two
/// threads each takes half of `dZ`'s columns (packing and products); each output
/// element is summed in row order either way, so one thread and two give the same bits.
pub(crate) fn transposed_products(
    dz: ArrayView2<f32>,
    rights: &[ArrayView2<f32>],
) -> Vec<Array2<f32>> {
    let (rows, n) = dz.dim();
    let widths: Vec<usize> = rights.iter().map(|a| a.ncols()).collect();
    let m: usize = widths.iter().sum();
    let split = n >= 2 * PANEL && super::threads::worth_splitting(n, rows, m);
    let mid = if split {
        (n / 2).next_multiple_of(PANEL)
    } else {
        n
    };
    // (dzᵀ a)ᵀ = aᵀ dz: the `A`s' columns are the kernel's rows, `dZ`'s its weights;
    // one such product per half of `dZ`'s columns.
    let mut halves = [aligned::zeros((m, mid)), aligned::zeros((m, n - mid))];
    let mut lhs = Array2::<f32>::zeros((m, CHUNK_ROWS.min(rows)));
    // Each half's packed chunk of `dZ`, repacked in place chunk after chunk.
    let mut packs: [PackedWeights; 2] = Default::default();
    for c0 in (0..rows).step_by(CHUNK_ROWS) {
        let c1 = (c0 + CHUNK_ROWS).min(rows);
        if lhs.ncols() != c1 - c0 {
            lhs = Array2::zeros((m, c1 - c0));
        }
        let mut at = 0;
        for a in rights {
            let part = a.slice(s![c0..c1, ..]);
            lhs.slice_mut(s![at..at + a.ncols(), ..]).assign(&part.t());
            at += a.ncols();
        }
        let ([top, bottom], [p0, p1]) = (&mut halves, &mut packs);
        let chunk = dz.slice(s![c0..c1, ..]);
        let product = |cols: Range<usize>, out: &mut Array2<f32>, packed: &mut PackedWeights| {
            if !cols.is_empty() {
                packed.repack(&[chunk.slice(s![.., cols]).t()]);
                packed.mul(lhs.view(), &mut out.view_mut(), Epilogue::Accumulate);
            }
        };
        super::threads::join(
            split,
            || product(0..mid, top, p0),
            || product(mid..n, bottom, p1),
        );
    }
    let mut at = 0;
    let mut out: Vec<Array2<f32>> = widths.iter().map(|&w| Array2::zeros((n, w))).collect();
    for (o, &w) in out.iter_mut().zip(&widths) {
        for (half, cols) in halves.iter().zip([0..mid, mid..n]) {
            let block = half.slice(s![at..at + w, ..]);
            o.slice_mut(s![cols, ..]).assign(&block.t());
        }
        at += w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Against ndarray's product, NaN-free random data, at row counts below, at and
    /// past a chunk (a short last chunk), widths not multiples of 16.
    #[test]
    fn matches_ndarray() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut random =
            |r, c| Array2::from_shape_simple_fn((r, c), || rng.random_range(-1.0f32..1.0));
        for &(rows, n) in &[(1, 8), (37, 40), (512, 64), (1300, 100)] {
            let dz = random(rows, n);
            let (a, b) = (random(rows, 7), random(rows, 33));
            let got = transposed_products(dz.view(), &[a.view(), b.view()]);
            for (g, x) in got.iter().zip([&a, &b]) {
                let want = dz.t().dot(x);
                assert_eq!(g.dim(), want.dim());
                let err = g
                    .iter()
                    .zip(&want)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(err < 1e-4 * (rows as f32).sqrt(), "R={rows} N={n}: {err}");
            }
        }
    }
}

//! A layer-direction's forward on two threads by batch halves: each thread runs the
//! whole recurrence of its rows (projection, products, cell updates, and in training
//! its rows of the gate cache), and the threads meet once, at the end.
//!
//! The hidden-unit split of inference (`super::unit_split`) streams half the weights per
//! thread, and the training forward's per-step batch split (`simd::step_in_place`)
//! leaves the projection's chunks and the gate cache to one thread; both join at every
//! step, since each step reads all of `h_{t-1}`, and a stall of either thread holds up
//! both. By batch halves each thread streams all of `W_hh` (from its own L2 when it
//! fits) and never waits: on this 2-vCPU VM inference ran 5–18 % faster at every shape
//! with B ≥ 16 but DB H = 1024 B = 16, whose 16 MiB `W_hh` per step from L3 made it 4 %
//! slower (BENCHMARKS.md §28). ONNX Runtime's CPU LSTM splits its batch the same way.
//!
//! Every row is computed by the kernels and in the order of one thread (see
//! [`applies`]): the same bits.

use std::ops::Range;

use ndarray::{s, Array2, Axis};

use super::packs::LayerPacks;
use super::panel_matvec::MATVEC_MAX_BATCH;
use super::simd::starts_from_zero;
use crate::weights::LayerWeights;

/// Fewest rows split by batch halves (8 per thread, measured at DB H = 512 B = 16).
const BATCH_SPLIT_MIN_ROWS: usize = 16;

/// Largest `W_hh` (and `W_ch`) in bytes that each thread streams whole every step: 4 MiB
/// (H = 512) measured faster split by batch, 16 MiB (H = 1024) slower.
const BATCH_SPLIT_MAX_WEIGHT_BYTES: usize = 8 << 20;

/// Whether [`super::forward`]'s layer-direction of `steps` steps from state `(h, c)`
/// (`[B, H]`) runs by batch halves: two threads free, enough rows, weights that each
/// thread can stream, and halves whose rows take the one-thread path's kernels: the
/// packed GEMM (not the matrix-vector products), the same projection (packed or not,
/// [`LayerPacks::packs_projection`]) and the same zero-state start
/// ([`starts_from_zero`]).
pub(crate) fn applies(
    w: &LayerWeights,
    packs: &LayerPacks,
    steps: usize,
    (h, c): (&Array2<f32>, &Array2<f32>),
) -> bool {
    let b = h.nrows();
    // The projection's packing and the zero-state start of these rows.
    let kernels = |rows: &Range<usize>| {
        let half = s![rows.clone(), ..];
        let zero = starts_from_zero(h.slice(half), c.slice(half), w);
        (packs.packs_projection(steps * rows.len()), zero)
    };
    splits(b, 4 * w.w_hh.len(), |rows| {
        kernels(rows) == kernels(&(0..b))
    })
}

/// Whether `b` rows through `weight_bytes` of recurrent weights split by batch halves:
/// two threads free, enough rows, weights that each thread can stream, and halves that
/// take the packed GEMM and pass `same_kernels` (they take the whole's other kernels, so
/// give its bits). The LSTM's [`applies`] and the GRU's forward ask it.
pub(crate) fn splits(
    b: usize,
    weight_bytes: usize,
    same_kernels: impl Fn(&Range<usize>) -> bool,
) -> bool {
    super::threads::may_split()
        && b >= BATCH_SPLIT_MIN_ROWS
        && weight_bytes <= BATCH_SPLIT_MAX_WEIGHT_BYTES
        && halves(b)
            .iter()
            .all(|rows| rows.len() > MATVEC_MAX_BATCH && same_kernels(rows))
}

/// The two halves' rows of a batch of `b`.
pub(crate) fn halves(b: usize) -> [Range<usize>; 2] {
    [0..b / 2, b / 2..b]
}

/// Rows `rows` of `[B, H]` state `a`, as its own array.
pub(crate) fn rows_of(a: &Array2<f32>, rows: &Range<usize>) -> Array2<f32> {
    super::aligned::copy_of(a.slice(s![rows.clone(), ..]))
}

/// Writes the halves' final states back into `a` `[B, H]`.
pub(crate) fn join_rows(a: &mut Array2<f32>, halves: [Array2<f32>; 2]) {
    let mid = halves[0].nrows();
    let (mut top, mut bottom) = a.view_mut().split_at(Axis(0), mid);
    top.assign(&halves[0]);
    bottom.assign(&halves[1]);
}

//! How many threads the CPU path uses (1 or 2), settable per process, and the splits
//! that hand half of the work to its second thread (`super::worker`): a step's batch
//! halves, the input projection's row halves and the gradient GEMMs' row halves run on
//! it. Every split divides rows whose arithmetic does not depend on the split, so two
//! threads give the bits of one.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

/// Threads of the CPU path: 0 until first asked, then `LSTM_CPU_THREADS` or the default.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many threads the CPU path uses (1 or 2): `LSTM_CPU_THREADS`, else 2 where the
/// machine has two cores or more. Two give the bits of one, and since the hidden-unit
/// split of the forward and the batch split of the backward step they were faster at
/// every measured shape or equal (BENCHMARKS.md §19).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let n = std::env::var("LSTM_CPU_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(cores)
                .clamp(1, 2);
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

thread_local! {
    /// Set while this thread runs one side of a [`join`]: work there stays on it.
    static IN_SPLIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether work may be split over a second thread here: two threads configured, and not
/// already inside one side of a split (a nested split would only queue behind itself).
pub(crate) fn may_split() -> bool {
    threads() > 1 && !IN_SPLIT.with(|s| s.get())
}

/// Runs `f` marked as one side of a split (see [`may_split`]).
fn as_split_side<R>(f: impl FnOnce() -> R) -> R {
    let before = IN_SPLIT.with(|s| s.replace(true));
    let r = f();
    IN_SPLIT.with(|s| s.set(before));
    r
}

/// Sets [`threads`] for every later CPU call in this process (clamped to 1..=2).
pub fn set_threads(n: usize) {
    THREADS.store(n.clamp(1, 2), Ordering::Relaxed);
}

/// Runs `a` and `b`, on two threads when `split`: `a` on the calling thread, `b` on the
/// CPU path's worker (`super::worker`).
pub(crate) fn join<RA: Send, RB: Send>(
    split: bool,
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    match split {
        true => super::worker::join(|| as_split_side(a), || as_split_side(b)),
        false => (a(), b()),
    }
}

/// Whether an `m × k × n` product is worth splitting over two threads.
pub(crate) fn worth_splitting(m: usize, k: usize, n: usize) -> bool {
    may_split() && m >= 2 && m * k * n >= 1 << 20
}

/// `f(a, out)` for `out` `[M, N]` computed row by row from `a` `[M, K]`: the rows split
/// in two halves over the two threads when [`threads`] is 2 (and not already split) and the
/// product is large. Each output row is computed by the same kernel either way, so the
/// result does not depend on the split.
pub(crate) fn by_row_halves(
    a: ArrayView2<f32>,
    out: ArrayViewMut2<f32>,
    f: impl Fn(ArrayView2<f32>, ArrayViewMut2<f32>) + Sync,
) {
    let (m, k) = a.dim();
    if !worth_splitting(m, k, out.ncols()) {
        f(a, out);
        return;
    }
    let (top, bottom) = a.split_at(Axis(0), m / 2);
    let (out_top, out_bottom) = out.split_at(Axis(0), m / 2);
    join(true, || f(top, out_top), || f(bottom, out_bottom));
}

/// `a · b` through ndarray's GEMM, [`by_row_halves`].
pub(crate) fn dot_rows(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    by_row_halves(a, c.view_mut(), |a, mut c| {
        general_mat_mul(1.0, &a, &b, 0.0, &mut c)
    });
    c
}

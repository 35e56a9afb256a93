//! The step kernels' tests and single-kernel entry points take host arrays in the CPU
//! twins' layout; these convert them to and from the kernels' unit-interleaved one.

use ndarray::{Array2, ArrayView2};

use crate::gpu::pack;

/// `[B, 4H]` rows in gate blocks (i, f, g, o) → the kernels' `[B][H][4]` (unit-interleaved).
pub(crate) fn interleave_gate_rows(a: ArrayView2<f32>) -> Vec<f32> {
    a.rows()
        .into_iter()
        .flat_map(pack::interleave_vec)
        .collect()
}

/// Inverse of [`interleave_gate_rows`]: `[B][H][4]` → `[B, 4H]`.
pub(crate) fn deinterleave_gate_rows(data: &[f32], b: usize, h: usize) -> Array2<f32> {
    Array2::from_shape_fn((b, 4 * h), |(r, q)| data[r * 4 * h + 4 * (q % h) + q / h])
}

/// The training cache's `prev` `[R][2H]` (`h_{t-1}`, `c_{t-1}` per row) for a kernel that
/// reads only `c_{t-1}`: the `h` half holds `fill` (NaN shows a stray read).
pub(crate) fn prev_rows(c_prev: ArrayView2<f32>, fill: f32) -> Vec<f32> {
    let h = c_prev.ncols();
    c_prev
        .rows()
        .into_iter()
        .flat_map(|r| std::iter::repeat_n(fill, h).chain(r.into_iter().copied()))
        .collect()
}

/// `[B][H]` floats of a readback as `[B, H]`, from element `at` on.
pub(crate) fn block(data: &[f32], at: usize, b: usize, h: usize) -> Array2<f32> {
    Array2::from_shape_fn((b, h), |(r, j)| data[at + r * h + j])
}

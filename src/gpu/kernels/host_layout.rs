//! The step kernels' tests and single-kernel entry points take host arrays in the CPU
//! twins' layout; these convert them to and from the kernels' unit-interleaved one,
//! and read a step's results back as [`StepOutput`].

use ndarray::{Array2, ArrayView2};

use crate::error::{LstmError, Result};
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

/// What [`super::lstm_step::run`] returns, in the CPU twin's layout.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// The new state `[B, H]` (inactive rows keep theirs).
    pub h: Array2<f32>,
    pub c: Array2<f32>,
    /// The step's output `[B, H]`: `h` on active rows, 0 on inactive ones.
    pub y: Array2<f32>,
    /// The training cache: gate activations `[B, 4H]` in i, f, g, o blocks (0 on
    /// inactive rows), and the state the step read.
    pub gates: Array2<f32>,
    pub h_prev: Array2<f32>,
    pub c_prev: Array2<f32>,
}

/// [`super::lstm_step::run`]'s readback (state, y, gates, prev) in the CPU twin's layout.
pub(crate) fn unpack(data: Vec<Vec<f32>>, b: usize, hs: usize) -> Result<StepOutput> {
    let [state, y, gates, prev]: [Vec<f32>; 4] = data
        .try_into()
        .map_err(|_| LstmError::value("lstm_step readback", "not four buffers"))?;
    Ok(StepOutput {
        h: block(&state, 2 * b * hs, b, hs),
        c: block(&state, 3 * b * hs, b, hs),
        y: block(&y, 0, b, hs),
        gates: deinterleave_gate_rows(&gates, b, hs),
        h_prev: Array2::from_shape_fn((b, hs), |(r, j)| prev[r * 2 * hs + j]),
        c_prev: Array2::from_shape_fn((b, hs), |(r, j)| prev[r * 2 * hs + hs + j]),
    })
}

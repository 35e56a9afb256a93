//! The input projection `x · W_ihᵀ + b` of one layer-direction, computed a few time
//! steps at a time into one reused buffer just before the steps read it.
//!
//! Hoisting the projection out of the recurrence makes it one large GEMM; computing it
//! for all T at once made that GEMM's output `[T·B, 4H]` a fresh allocation per
//! layer-direction (64 MiB at T = 128, B = 64, H = 512: page faults and a trip through
//! memory). A chunk of [`CHUNK_FLOATS`] is still a large GEMM for the packed kernel, and
//! stays in cache until its steps have read it.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2};

use super::gemm::{Epilogue, InputProjection, PackedWeights};

/// Floats of the packed projection computed at once (`steps · B · 4H`, at least one
/// step): 1 MiB, so that the chunk is still in L2 when its steps read it (2 MiB chunks
/// measured 8 % slower at T = 28, B = 128, H = 256).
const CHUNK_FLOATS: usize = 1 << 18;

/// Fewest rows (`T · B`) for which packing `W_ih` pays: packing costs about a nanosecond
/// per weight, and the packed kernel gains ~10 % over ndarray's GEMM (which packs small
/// blocks as it goes), so below ~1,000 rows the packing costs more than it saves
/// (measured: T = 25, B = 16, H = 1024 lost 20 % packed).
const PACKED_MIN_ROWS: usize = 1024;

/// Whether packing `W_ih` for one projection of `rows` rows (`T·B`) pays (see
/// [`PACKED_MIN_ROWS`]).
pub(crate) fn packing_pays(rows: usize) -> bool {
    rows >= PACKED_MIN_ROWS
}

/// `gx[t] = x[t] · W_ihᵀ + b` `[B, N]` for each step `t` of a `[T, B, I]` input.
pub(crate) struct Projection<'a> {
    /// The input as `[T·B, I]` rows.
    rows: ArrayView2<'a, f32>,
    w: Weights<'a>,
    bias: Array1<f32>,
    batch: usize,
    steps_per_chunk: usize,
    /// `[steps_per_chunk · B, N]`: the chunk `chunk`'s projections.
    buf: Array2<f32>,
    chunk: Option<usize>,
}

impl<'a> Projection<'a> {
    /// The projection of `x` `[T, B, I]` (standard layout) through `w_ih` `[N, I]`,
    /// packing `w_ih` for this projection alone from [`PACKED_MIN_ROWS`] rows.
    pub fn new(x: ArrayView3<'a, f32>, w_ih: ArrayView2<'a, f32>, bias: Array1<f32>) -> Self {
        let (t_len, batch, _) = x.dim();
        match packing_pays(t_len * batch) {
            true => Self::with(x, Weights::Owned(PackedWeights::new(w_ih)), bias),
            false => Self::plain(x, vec![w_ih], bias),
        }
    }

    /// [`Projection::new`] through weights packed already (`N` rows).
    pub fn packed(x: ArrayView3<'a, f32>, w: &'a PackedWeights, bias: Array1<f32>) -> Self {
        Self::with(x, Weights::Packed(w), bias)
    }

    /// [`Projection::new`] through ndarray's GEMM and the rows of `blocks` one after the
    /// other (`N` in all), all steps at once (ndarray packs `W_ih` on every call).
    pub fn plain(
        x: ArrayView3<'a, f32>,
        blocks: Vec<ArrayView2<'a, f32>>,
        bias: Array1<f32>,
    ) -> Self {
        Self::with(x, Weights::Plain(blocks), bias)
    }

    fn with(x: ArrayView3<'a, f32>, w: Weights<'a>, bias: Array1<f32>) -> Self {
        let n = bias.len();
        let (t_len, batch, i) = x.dim();
        let rows = x
            .into_shape_with_order((t_len * batch, i))
            .expect("the layer input is standard layout");
        let steps_per_chunk = match w {
            Weights::Plain(_) => t_len,
            _ => CHUNK_FLOATS / (batch * n).max(1),
        };
        let steps_per_chunk = steps_per_chunk.clamp(1, t_len.max(1));
        Projection {
            rows,
            w,
            bias,
            batch,
            steps_per_chunk,
            buf: super::aligned::zeros((steps_per_chunk * batch, n)),
            chunk: None,
        }
    }

    /// `gx[t]` `[B, N]`, computing its chunk of steps first if it is not the current one.
    pub fn at(&mut self, t: usize) -> ArrayView2<'_, f32> {
        let chunk = t / self.steps_per_chunk;
        let first = chunk * self.steps_per_chunk;
        if self.chunk != Some(chunk) {
            let t_len = self.rows.nrows() / self.batch;
            let steps = self.steps_per_chunk.min(t_len - first);
            let rows = self
                .rows
                .slice(s![first * self.batch..(first + steps) * self.batch, ..]);
            let out = self.buf.slice_mut(s![..steps * self.batch, ..]);
            project(
                &self.w,
                rows,
                out,
                self.bias.as_slice().expect("contiguous"),
            );
            self.chunk = Some(chunk);
        }
        let at = (t - first) * self.batch;
        self.buf.slice(s![at..at + self.batch, ..])
    }
}

/// What a step adds to its recurrent product: its rows of the projection computed ahead,
/// or its input to project in the product's epilogue (`PackedWeights::mul_projecting`).
#[derive(Clone, Copy)]
pub(crate) enum StepInput<'a> {
    /// `gx` `[B, 4H]`, bias included.
    Projected(ArrayView2<'a, f32>),
    /// The step's `x` `[B, I]`, packed `W_ih` and the bias.
    Fused(InputProjection<'a>),
}

impl<'a> StepInput<'a> {
    /// The rows before `mid`, and the rest.
    pub fn split_at(self, mid: usize) -> (StepInput<'a>, StepInput<'a>) {
        match self {
            StepInput::Projected(gx) => {
                let (a, b) = gx.split_at(ndarray::Axis(0), mid);
                (StepInput::Projected(a), StepInput::Projected(b))
            }
            StepInput::Fused(p) => {
                let (a, b) = p.x.split_at(mid * p.w_ih.k());
                let half = |x| StepInput::Fused(InputProjection { x, ..p });
                (half(a), half(b))
            }
        }
    }

    /// The step's `gx` `[B, 4H]` written into `z`.
    pub fn write_into(self, z: &mut ArrayViewMut2<f32>) {
        match self {
            StepInput::Projected(gx) => z.assign(&gx),
            StepInput::Fused(p) => {
                let x = ArrayView2::from_shape((z.nrows(), p.w_ih.k()), p.x).expect("[B, I]");
                p.w_ih.mul(x, z, Epilogue::AddRow(p.bias));
            }
        }
    }
}

/// The step inputs of one layer-direction: the projection computed ahead a chunk of
/// steps at a time, or each step's input projected in its recurrent product's
/// epilogue (for a narrow input, BENCHMARKS.md §34).
pub(crate) enum StepInputs<'a> {
    Hoisted(Projection<'a>),
    Fused {
        /// The input as `[T·B, I]` rows.
        rows: ArrayView2<'a, f32>,
        w_ih: &'a PackedWeights,
        bias: Array1<f32>,
        batch: usize,
    },
}

impl StepInputs<'_> {
    /// Step `t`'s input.
    pub fn at(&mut self, t: usize) -> StepInput<'_> {
        match self {
            StepInputs::Hoisted(p) => StepInput::Projected(p.at(t)),
            StepInputs::Fused {
                rows,
                w_ih,
                bias,
                batch,
            } => {
                let x = rows.slice(s![t * *batch..(t + 1) * *batch, ..]);
                StepInput::Fused(InputProjection {
                    x: x.to_slice().expect("the layer input is standard layout"),
                    w_ih,
                    bias: bias.as_slice().expect("contiguous"),
                })
            }
        }
    }
}

/// `W_ih` as the projection multiplies by it.
enum Weights<'a> {
    /// Packed for this projection alone.
    Owned(PackedWeights),
    /// Packed by the caller, perhaps for many calls.
    Packed(&'a PackedWeights),
    /// Through ndarray's GEMM, a block of rows at a time (few rows: see
    /// [`PACKED_MIN_ROWS`]).
    Plain(Vec<ArrayView2<'a, f32>>),
}

/// `out = rows · wᵀ + bias`, by row halves over the CPU path's threads when that pays.
fn project(w: &Weights, rows: ArrayView2<f32>, out: ArrayViewMut2<f32>, bias: &[f32]) {
    super::threads::by_row_halves(rows, out, |rows, mut out| match w {
        Weights::Owned(p) | &Weights::Packed(p) => p.mul(rows, &mut out, Epilogue::AddRow(bias)),
        Weights::Plain(blocks) => {
            out.assign(&ArrayView1::from(bias));
            let mut at = 0;
            for w in blocks {
                let mut cols = out.slice_mut(s![.., at..at + w.nrows()]);
                general_mat_mul(1.0, &rows, &w.t(), 1.0, &mut cols);
                at += w.nrows();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, Axis};
    use rand::{Rng, SeedableRng};

    /// Every step's projection, walked forward and backward (as the reverse direction
    /// does), against the whole product at once: packed with one step per chunk, packed
    /// with several, and through ndarray's GEMM.
    #[test]
    fn every_step_matches_the_whole_product() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        // (T, B, I, N): 1 step per chunk (B·N = 2^18); 3 steps per chunk, T not a
        // multiple of 3; too few rows to pack.
        for &(t_len, b, i, n) in &[(20, 64, 5, 4096), (40, 29, 7, 2996), (7, 3, 6, 40)] {
            let x = Array3::from_shape_simple_fn((t_len, b, i), || rng.random_range(-1.0f32..1.0));
            let w = Array2::from_shape_simple_fn((n, i), || rng.random_range(-1.0f32..1.0));
            let bias = Array1::from_shape_simple_fn(n, || rng.random_range(-1.0f32..1.0));
            let rows = x.view().into_shape_with_order((t_len * b, i)).unwrap();
            let want = (rows.dot(&w.t()) + &bias)
                .into_shape_with_order((t_len, b, n))
                .unwrap();
            let mut proj = Projection::new(x.view(), w.view(), bias.clone());
            for t in (0..t_len).chain((0..t_len).rev()) {
                let got = proj.at(t);
                let err = got
                    .iter()
                    .zip(want.index_axis(Axis(0), t))
                    .map(|(g, w)| (g - w).abs())
                    .fold(0.0f32, f32::max);
                assert!(err < 1e-5, "T={t_len} B={b} N={n} t={t}: error {err}");
            }
        }
    }
}

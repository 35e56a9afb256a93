//! A layer-direction's weights packed for the CPU kernels, each packed the first time a
//! forward needs it and kept as long as the packs live.
//!
//! A one-off [`super::forward()`] builds fresh packs per call (packing costs ~1 ns per
//! weight, so it packs only what its shape repays); a [`super::CpuLstm`] keeps them
//! across calls, like ONNX Runtime's session pre-packing its initializers, and then
//! packs the input projection's `W_ih` at any number of rows.

use std::ops::Range;
use std::sync::OnceLock;

use ndarray::{s, Array1, ArrayView2};

use super::gemm::PackedWeights;
use super::matvec::MATVEC_MAX_BATCH;
use super::projection::{packing_pays, Projection, StepInputs};
use crate::weights::{LayerWeights, PeepholeWeights};

/// Fewest step rows (`T·B`, B ≤ [`MATVEC_MAX_BATCH`]) for which a one-off forward packs
/// `W_hh` for `panel_matvec`: packing costs about what ~280 of its products save (S1's
/// one-off forward, 128 rows, measured 2.5 ms unpacked against 2.7–2.8 packed;
/// BENCHMARKS.md §27).
const PACKED_MATVEC_MIN_ROWS: usize = 512;

/// The packed forms of one layer-direction's weights (see the module doc).
pub(crate) struct LayerPacks {
    /// Whether the packs outlive the call (a prepared model).
    kept: bool,
    w_ih: OnceLock<PackedWeights>,
    w_hh: OnceLock<PackedWeights>,
    w_ch: OnceLock<PackedWeights>,
    /// The two hidden-unit halves of the two-thread forward (`super::unit_split`).
    halves: [HalfPacks; 2],
}

/// One hidden-unit half's rows of `W_ih` and `W_hh`, packed.
#[derive(Default)]
pub(crate) struct HalfPacks {
    pub w_ih: OnceLock<PackedWeights>,
    pub w_hh: OnceLock<PackedWeights>,
}

impl LayerPacks {
    /// Empty packs; `kept` says whether they will serve more than one call.
    pub fn new(kept: bool) -> LayerPacks {
        LayerPacks {
            kept,
            w_ih: OnceLock::new(),
            w_hh: OnceLock::new(),
            w_ch: OnceLock::new(),
            halves: Default::default(),
        }
    }

    /// Whether the steps of a forward over `steps` steps of `batch` rows multiply by
    /// packed recurrent weights: above [`MATVEC_MAX_BATCH`] rows always (the packed
    /// GEMM); at or below it (`panel_matvec`) when the packs are kept, or when the
    /// steps repay the packing ([`PACKED_MATVEC_MIN_ROWS`]).
    pub fn packs_step(&self, steps: usize, batch: usize) -> bool {
        batch > MATVEC_MAX_BATCH || self.kept || steps * batch >= PACKED_MATVEC_MIN_ROWS
    }

    /// Whether the input projection of `rows` (`T·B`) rows goes through packed weights.
    pub fn packs_projection(&self, rows: usize) -> bool {
        self.kept || packing_pays(rows)
    }

    /// The input projection of `x` `[T, B, I]` through `w`'s `W_ih`, plus `bias`.
    pub fn projection<'a>(
        &'a self,
        x: ndarray::ArrayView3<'a, f32>,
        w: &'a LayerWeights,
        bias: Array1<f32>,
    ) -> Projection<'a> {
        let (t, b, _) = x.dim();
        match self.packs_projection(t * b) {
            true => Projection::packed(x, pack(&self.w_ih, &[w.w_ih.view()]), bias),
            false => Projection::plain(x, vec![w.w_ih.view()], bias),
        }
    }

    /// The step inputs of a forward over `x` `[T, B, I]` through `w` (`bias` added): the
    /// projection computed ahead, or, for steps through the packed GEMM with an input
    /// at most B/2 wide, each step's projected in its recurrent product's epilogue.
    /// Projecting ahead writes and reads `B·4H` floats per step and pushes `W_hh` out of
    /// L2; projecting in the product reads `W_ih`'s `I·4H` per step instead: measured
    /// even at I = B, 5–9 % faster at I ≤ B/2 (BENCHMARKS.md §34). Only where the
    /// projection ahead would be packed too ([`LayerPacks::packs_projection`]), whose
    /// bits fusing gives: a batch half or a unit half that projects ahead then gives the
    /// bits of the whole.
    pub fn step_inputs<'a>(
        &'a self,
        x: ndarray::ArrayView3<'a, f32>,
        w: &'a LayerWeights,
        bias: Array1<f32>,
    ) -> StepInputs<'a> {
        let (t, batch, i) = x.dim();
        if batch <= MATVEC_MAX_BATCH || 2 * i > batch || !self.packs_projection(t * batch) {
            return StepInputs::Hoisted(self.projection(x, w, bias));
        }
        let rows = x
            .into_shape_with_order((t * batch, i))
            .expect("the layer input is standard layout");
        let w_ih = pack(&self.w_ih, &[w.w_ih.view()]);
        StepInputs::Fused {
            rows,
            w_ih,
            bias,
            batch,
        }
    }

    /// `W_hh` packed.
    pub fn w_hh(&self, w: &LayerWeights) -> &PackedWeights {
        pack(&self.w_hh, &[w.w_hh.view()])
    }

    /// `W_ch` packed, with Full peepholes.
    pub fn w_ch(&self, w: &LayerWeights) -> Option<&PackedWeights> {
        match &w.peephole {
            PeepholeWeights::Full(m) => Some(pack(&self.w_ch, &[m.view()])),
            _ => None,
        }
    }

    /// The projection of half `i` (units `units`) of `x` through its rows of `W_ih`.
    pub fn half_projection<'a>(
        &'a self,
        i: usize,
        units: &Range<usize>,
        x: ndarray::ArrayView3<'a, f32>,
        w: &'a LayerWeights,
        bias: Array1<f32>,
    ) -> Projection<'a> {
        let (t, b, _) = x.dim();
        let blocks = gate_blocks(w.w_ih.view(), units);
        match self.packs_projection(t * b) {
            true => Projection::packed(x, pack(&self.halves[i].w_ih, &blocks), bias),
            false => Projection::plain(x, blocks, bias),
        }
    }

    /// Half `i`'s (units `units`) rows of `W_hh`, packed.
    pub fn half_w_hh(&self, i: usize, units: &Range<usize>, w: &LayerWeights) -> &PackedWeights {
        pack(&self.halves[i].w_hh, &gate_blocks(w.w_hh.view(), units))
    }
}

/// `cell`'s packed weights, packing the rows of `blocks` first if it is empty.
fn pack<'a>(cell: &'a OnceLock<PackedWeights>, blocks: &[ArrayView2<f32>]) -> &'a PackedWeights {
    cell.get_or_init(|| PackedWeights::from_blocks(blocks))
}

/// The rows `g·H + u` of `m` `[4H, K]` for each gate g and unit u: one block per gate,
/// as views (no copy of the weights).
pub(crate) fn gate_blocks<'a>(
    m: ArrayView2<'a, f32>,
    units: &Range<usize>,
) -> Vec<ArrayView2<'a, f32>> {
    let h = m.nrows() / 4;
    (0..4)
        .map(|g| m.slice_move(s![g * h + units.start..g * h + units.end, ..]))
        .collect()
}

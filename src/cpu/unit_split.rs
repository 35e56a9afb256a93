//! A layer-direction's forward on two threads, split by hidden units: each thread owns
//! the rows of `W_ih`, `W_hh`, the bias and the peepholes of half the units and runs
//! their whole recurrence (projection, product, cell update), reading all of `h_{t-1}`
//! and writing its half of `h_t` and `c_t`; one join per step. Splitting the batch
//! instead makes both threads stream all the weights: with units, each streams half (the
//! step's product alone ran 14–72 % faster at B ≥ 16 in a probe, whole forwards 5–17 %;
//! BENCHMARKS.md §19). Every unit is computed by the same kernels in the same order as on
//! one thread: same bits. Where a thread can stream all the weights, splitting the batch
//! for the whole sequence (`super::batch_split`, no join per step) measured faster still.

use std::ops::Range;

use ndarray::{s, Array1, Array2, ArrayView2, ArrayView3, ArrayViewMut2, Axis};

use super::gemm::{Epilogue, PackedWeights};
use super::matvec::{step_product, MATVEC_MAX_BATCH};
use super::packs::LayerPacks;
use super::panel_matvec::{Walk, MATVEC_SPLIT_FMAS};
use super::projection::Projection;
use super::simd::{cells, mark_live};
use super::step_output::{write_step_output, Output};
use crate::weights::{LayerWeights, PeepholeWeights};

/// Whether [`forward`] applies to `steps` steps of `batch` rows: two threads free,
/// peepholes that read only a unit's own cell (a Full `W_ch·c_{t-1}` reads all of
/// them), and a step large enough: above the matrix-vector batch size ≥ 0.5M FMAs (below,
/// the join costs about what the half saves: measured for the batch split, BENCHMARKS.md
/// §9); at or below it, packed weights (`panel_matvec`) and a product per row of at least
/// [`MATVEC_SPLIT_FMAS`], where the product's rows would be split anyway.
pub(crate) fn applies(
    w: &LayerWeights,
    (steps, batch): (usize, usize),
    packs: &LayerPacks,
) -> bool {
    let h = w.w_hh.ncols();
    let large = match batch <= MATVEC_MAX_BATCH {
        true => packs.packs_step(steps, batch) && 4 * h * h >= MATVEC_SPLIT_FMAS,
        false => batch * 4 * h * h >= 1 << 19,
    };
    super::threads::may_split()
        && large
        && !matches!(w.peephole, PeepholeWeights::Full(_))
        && h >= 16
}

/// `v`'s entries `g·H + u` (a `[gates·H]` bias or peephole vector) for units `units`.
fn gate_entries(v: &Array1<f32>, gates: usize, units: &Range<usize>) -> Array1<f32> {
    let h = v.len() / gates;
    (0..gates)
        .flat_map(|g| v.slice(s![g * h + units.start..g * h + units.end]).to_vec())
        .collect()
}

/// Runs all steps over `layer_in` `[T, B, I]` from `(h, c)` (left holding the final
/// state), writing every row of `out` `[T, B, H]` (`h_t` for live rows, zero for the
/// rest), like the one-thread
/// `Direction::forward` without a training cache. `order` lists the steps.
pub(crate) fn forward(
    (w, packs): (&LayerWeights, &LayerPacks),
    layer_in: ArrayView3<f32>,
    (h, c): (&mut Array2<f32>, &mut Array2<f32>),
    order: impl Iterator<Item = usize>,
    lens: &[usize],
    out: &mut Output,
) {
    let (b, hs) = h.dim();
    let mid = (hs / 2).next_multiple_of(8).min(hs);
    let bias = w.combined_bias();
    let half = |i: usize, units: Range<usize>| Half {
        gx: packs.half_projection(
            i,
            &units,
            layer_in.view(),
            w,
            gate_entries(&bias, 4, &units),
        ),
        w_hh: packs.half_w_hh(i, &units, w),
        diag: match &w.peephole {
            PeepholeWeights::Diagonal(p) => Some(gate_entries(p, 3, &units)),
            _ => None,
        },
        z: super::aligned::zeros((b, 4 * units.len())),
        units,
    };
    let mut parts = [half(0, 0..mid), half(1, mid..hs)];
    // Not `super::aligned`: aligned, S1 on two threads measured 11 % slower
    // (BENCHMARKS.md §34; why is not known).
    let mut h_next = Array2::zeros((b, hs));
    let mut active = vec![false; b];
    let mut from_zero = super::simd::starts_from_zero(h.view(), c.view(), w);
    // A matrix-vector step's walk, turning each step (`panel_matvec`).
    let mut matvec = (b <= MATVEC_MAX_BATCH).then_some(Walk::Forward);
    for t in order {
        let recurrent = (!std::mem::take(&mut from_zero)).then_some(matvec);
        matvec = matvec.map(Walk::turned);
        mark_live(&mut active, lens, t);
        let (h_top, h_bottom) = h_next.view_mut().split_at(Axis(1), mid);
        let (c_top, c_bottom) = c.view_mut().split_at(Axis(1), mid);
        let [p0, p1] = &mut parts;
        let h_prev = h.view();
        super::threads::join(
            true,
            || p0.step((t, recurrent), h_prev, (h_top, c_top), &active),
            || p1.step((t, recurrent), h_prev, (h_bottom, c_bottom), &active),
        );
        std::mem::swap(h, &mut h_next);
        write_step_output(out.index_axis_mut(Axis(0), t), h.view(), &active);
    }
}

/// One thread's half of the units.
struct Half<'a> {
    units: Range<usize>,
    gx: Projection<'a>,
    w_hh: &'a PackedWeights,
    diag: Option<Array1<f32>>,
    /// `[B, 4·units]` scratch.
    z: Array2<f32>,
}

impl Half<'_> {
    /// Step `t`: `h_prev` `[B, H]` is the whole state before the step; `h`, `c`
    /// `[B, units]` this half's new and (in place) cell state. `recurrent` says how the
    /// recurrent product runs (`step_product`'s `matvec`); without it (a zero state,
    /// `simd::starts_from_zero`) `z` is the projection alone.
    fn step(
        &mut self,
        (t, recurrent): (usize, Option<Option<Walk>>),
        h_prev: ArrayView2<f32>,
        (mut h, c): (ArrayViewMut2<f32>, ArrayViewMut2<f32>),
        active: &[bool],
    ) {
        let gx = self.gx.at(t);
        match recurrent {
            Some(matvec) => {
                let gx = gx
                    .as_slice()
                    .expect("a projection chunk is standard layout");
                let (z, add) = (&mut self.z.view_mut(), Epilogue::AddMatrix(gx));
                step_product(self.w_hh, h_prev, z, add, matvec);
            }
            None => self.z.assign(&gx),
        }
        // Rows past their length keep their state.
        for (b, &on) in active.iter().enumerate() {
            if !on {
                h.row_mut(b)
                    .assign(&h_prev.row(b).slice(s![self.units.clone()]));
            }
        }
        cells(
            self.z.view(),
            h,
            c,
            self.diag.as_ref().and_then(|d| d.as_slice()),
            active,
        );
    }
}

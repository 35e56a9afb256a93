//! A layer's output as the CPU forward writes it: allocated without zeroing, every
//! element then written once by its direction's steps (`h` for live rows, zero past
//! each sequence's length). The zeroing had been 2–3 % of the seed model's forward
//! (BENCHMARKS.md §34).

use std::mem::MaybeUninit;

use ndarray::{Array3, ArrayView2, ArrayViewMut2, Zip};

/// A layer's output `[T, B, D·H]` while its directions write it (not initialised before).
pub(crate) type OutputArray = Array3<MaybeUninit<f32>>;

/// A layer output to be written (NaN-poisoned in this crate's unit tests, so that an
/// element a path leaves unwritten shows).
pub(crate) fn new_output(shape: (usize, usize, usize)) -> OutputArray {
    match cfg!(test) {
        true => Array3::from_elem(shape, MaybeUninit::new(f32::NAN)),
        false => Array3::uninit(shape),
    }
}

/// One direction's columns of a layer's output `[T, B, D·H]` while the forward writes
/// it (not initialised before), or a batch half's rows of them.
pub(crate) type Output<'a> = ndarray::ArrayViewMut3<'a, MaybeUninit<f32>>;

/// Writes step `t`'s output rows `out` `[B, H]` (not initialised before): `h` for the
/// live rows, zero for the rest (past their sequence's length).
pub(crate) fn write_step_output(
    mut out: ArrayViewMut2<MaybeUninit<f32>>,
    h: ArrayView2<f32>,
    active: &[bool],
) {
    Zip::from(out.rows_mut())
        .and(h.rows())
        .and(active)
        .for_each(
            |mut o, hr, &on| match (on, o.as_slice_mut(), hr.as_slice()) {
                // Slices, for a copy the compiler vectorises.
                (true, Some(o), Some(hr)) => o.iter_mut().zip(hr).for_each(|(o, &v)| {
                    o.write(v);
                }),
                (true, ..) => o.zip_mut_with(&hr, |o, &v| {
                    o.write(v);
                }),
                (false, ..) => o.fill(MaybeUninit::new(0.0)),
            },
        );
}

//! Arrays whose first element starts a cache line: a 512-bit load of a row of 16·k
//! floats then never straddles two lines (the global allocator aligns to 16 bytes, so
//! three loads in four did; BENCHMARKS.md §34).

use ndarray::{s, Array1, Array2, Dimension, IntoDimension};

/// Floats per 64-byte cache line.
const LINE_FLOATS: usize = 16;

/// A zeroed array of `shape` whose first element starts a cache line: an owned array
/// over a slice of a slightly longer allocation (row-major; its rows start lines too
/// when the last axis is a multiple of 16 long).
pub(crate) fn zeros<D: Dimension>(shape: impl IntoDimension<Dim = D>) -> ndarray::Array<f32, D> {
    let shape = shape.into_dimension();
    let len = shape.size();
    let all = vec![0.0f32; len + LINE_FLOATS];
    // At most 15 floats for an f32-aligned pointer; none if the platform cannot say.
    let skip = match all.as_ptr().align_offset(64) {
        n if n < LINE_FLOATS => n,
        _ => 0,
    };
    Array1::from_vec(all)
        .slice_move(s![skip..skip + len])
        .into_shape_with_order(shape)
        .expect("as many elements as the shape")
}

/// [`zeros`] holding `a`'s values.
pub(crate) fn copy_of(a: ndarray::ArrayView2<f32>) -> Array2<f32> {
    let mut out = zeros(a.dim());
    out.assign(&a);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_start_a_cache_line_whatever_the_shape() {
        for shape in [(1, 1), (3, 17), (128, 1024), (0, 5), (7, 0)] {
            for _ in 0..8 {
                let a = zeros(shape);
                assert_eq!(a.dim(), shape);
                assert!(a.iter().all(|v| *v == 0.0));
                assert!(a.is_standard_layout());
                if !a.is_empty() {
                    assert_eq!(a.as_ptr() as usize % 64, 0, "{shape:?}");
                }
            }
        }
        let b = ndarray::Array2::from_shape_fn((5, 3), |(r, c)| (r * 3 + c) as f32);
        let c = copy_of(b.view());
        assert_eq!(c, b);
        assert_eq!(c.as_ptr() as usize % 64, 0);
    }
}

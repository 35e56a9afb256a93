//! Host-side re-layout of PyTorch-ordered weights into the GPU's unit-interleaved
//! layout: the four gate rows of hidden unit j sit next to each other, so the
//! workgroup that owns unit j computes all four gates and can finish the cell update
//! without a second pass.

use ndarray::{ArrayView1, ArrayView2};

use crate::weights::{LayerWeights, PeepholeWeights};

/// `[4H, K]` in gate-major order (row g·H + j) → unit-interleaved (row 4j + g).
pub(crate) fn interleave_rows(w: ArrayView2<f32>) -> Vec<f32> {
    let h = w.nrows() / 4;
    let mut out = Vec::with_capacity(w.len());
    for j in 0..h {
        for g in 0..4 {
            out.extend(w.row(g * h + j).iter());
        }
    }
    out
}

/// `[4H]` gate-major → unit-interleaved.
pub(crate) fn interleave_vec(v: ArrayView1<f32>) -> Vec<f32> {
    let h = v.len() / 4;
    (0..h)
        .flat_map(|j| (0..4).map(move |g| v[g * h + j]))
        .collect()
}

/// The recurrent matrix `[H][4][K]`: `W_hh`, with `W_ch` appended to every row for Full peepholes.
pub(crate) fn recurrent_matrix(w: &LayerWeights) -> Vec<f32> {
    let h = w.w_hh.ncols();
    let full = match &w.peephole {
        PeepholeWeights::Full(m) => Some(m),
        _ => None,
    };
    let k = if full.is_some() { 2 * h } else { h };
    let mut out = Vec::with_capacity(4 * h * k);
    for j in 0..h {
        for g in 0..4 {
            out.extend(w.w_hh.row(g * h + j).iter());
            if let Some(m) = full {
                out.extend(m.row(g * h + j).iter());
            }
        }
    }
    out
}

/// Diagonal peepholes `[3H]` (i, f, o blocks) → `[H][3]`; a 4-element dummy otherwise
/// (a binding cannot be empty).
pub(crate) fn peephole_vec(w: &LayerWeights) -> Vec<f32> {
    match &w.peephole {
        PeepholeWeights::Diagonal(p) => {
            let h = p.len() / 3;
            (0..h)
                .flat_map(|j| (0..3).map(move |g| p[g * h + j]))
                .collect()
        }
        _ => vec![0.0; 4],
    }
}

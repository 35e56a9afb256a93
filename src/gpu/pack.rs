//! Host-side re-layout of PyTorch-ordered weights into the GPU's unit-interleaved
//! layout: the four gate rows of hidden unit j sit next to each other, so the
//! workgroup that owns unit j computes all four gates and can finish the cell update
//! without a second pass.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

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

/// A GRU layer-direction in the LSTM's four gate slots, as `[w_ih, bias, w_rec, peep]`
/// (`gru_step.wgsl`'s header): `w_ih` = (W_ir, W_iz, 0, W_in), `w_rec` = (W_hr, W_hz,
/// W_hn, 0), bias = (b_ir + b_hr, b_iz + b_hz, b_hn, b_in), `peep` a dummy.
pub(crate) fn gru_layer(w: &crate::gru::GruLayerWeights) -> [Vec<f32>; 4] {
    let h = w.w_hh.ncols();
    // Gate-major blocks of a [3H, K] matrix placed at the given slots of [4H, K].
    let slots = |m: ArrayView2<f32>, at: [usize; 3]| {
        let mut four = Array2::zeros((4 * h, m.ncols()));
        for (g, &slot) in at.iter().enumerate() {
            four.slice_mut(ndarray::s![slot * h..(slot + 1) * h, ..])
                .assign(&m.slice(ndarray::s![g * h..(g + 1) * h, ..]));
        }
        interleave_rows(four.view())
    };
    let folded = crate::cpu::gru_step::input_bias(w, true);
    let b_hn = crate::cpu::gru_step::recurrent_n_bias(w, true);
    let bias = ndarray::concatenate![
        ndarray::Axis(0),
        folded.slice(ndarray::s![..2 * h]),
        b_hn,
        folded.slice(ndarray::s![2 * h..])
    ];
    [
        slots(w.w_ih.view(), [0, 1, 3]),
        interleave_vec(bias.view()),
        slots(w.w_hh.view(), [0, 1, 2]),
        vec![0.0; 4],
    ]
}

/// The GRU's gradients from gradients in [`gru_layer`]'s slots (read back in the LSTM's
/// gate-major layout): rows of slots (0, 1, 3) for the input side, (0, 1, 2) for the
/// recurrent side; the other slot's sums belong to no GRU parameter and are dropped.
/// With the reset gate before the product (`reset_after = false`) ∂n_pre sits in slot 3
/// on both sides, and W_hn's gradient (paired with r ⊙ h) in the r ⊙ h columns that the
/// readback puts in `peephole` (see `backward_job.rs`).
pub(crate) fn gru_from_slots(g: &LayerWeights, reset_after: bool) -> crate::gru::GruLayerWeights {
    let h = g.w_hh.ncols();
    let rec = if reset_after { [0, 1, 2] } else { [0, 1, 3] };
    let rows2 = |m: &Array2<f32>, at: [usize; 3]| {
        let blocks: Vec<_> = at
            .iter()
            .map(|&k| m.slice(ndarray::s![k * h..(k + 1) * h, ..]))
            .collect();
        ndarray::concatenate(ndarray::Axis(0), &blocks).expect("same widths")
    };
    let rows1 = |v: &Array1<f32>, at: [usize; 3]| {
        let blocks: Vec<_> = at
            .iter()
            .map(|&k| v.slice(ndarray::s![k * h..(k + 1) * h]))
            .collect();
        ndarray::concatenate(ndarray::Axis(0), &blocks).expect("same lengths")
    };
    let mut w_hh = rows2(&g.w_hh, rec);
    if let (false, PeepholeWeights::Full(w_rh)) = (reset_after, &g.peephole) {
        let n_rows = ndarray::s![2 * h.., ..];
        w_hh.slice_mut(n_rows)
            .assign(&rows2(w_rh, rec).slice(n_rows));
    }
    crate::gru::GruLayerWeights {
        w_ih: rows2(&g.w_ih, [0, 1, 3]),
        w_hh,
        b_ih: g.b_ih.as_ref().map(|b| rows1(b, [0, 1, 3])),
        b_hh: g.b_hh.as_ref().map(|b| rows1(b, rec)),
    }
}

/// Inverse of [`interleave_rows`]: unit-interleaved `[4H, K]` → gate-major.
pub(crate) fn deinterleave_rows(data: &[f32], k: usize) -> Array2<f32> {
    let h = data.len() / (4 * k);
    Array2::from_shape_fn((4 * h, k), |(r, c)| data[(4 * (r % h) + r / h) * k + c])
}

/// Inverse of [`interleave_vec`].
pub(crate) fn deinterleave_vec(data: &[f32]) -> Array1<f32> {
    let h = data.len() / 4;
    Array1::from_shape_fn(4 * h, |r| data[4 * (r % h) + r / h])
}

/// Inverse of [`recurrent_matrix`]: `(W_hh, W_ch if Full)` from `[H][4][K]`.
pub(crate) fn split_recurrent(
    data: &[f32],
    h: usize,
    full: bool,
) -> (Array2<f32>, Option<Array2<f32>>) {
    let k = if full { 2 * h } else { h };
    let rows = deinterleave_rows(data, k);
    if !full {
        return (rows, None);
    }
    (
        rows.slice(ndarray::s![.., ..h]).to_owned(),
        Some(rows.slice(ndarray::s![.., h..]).to_owned()),
    )
}

/// Inverse of [`peephole_vec`] for Diagonal peepholes: `[H][3]` → `[3H]`.
pub(crate) fn peephole_from_gpu(data: &[f32]) -> Array1<f32> {
    let h = data.len() / 3;
    Array1::from_shape_fn(3 * h, |r| data[3 * (r % h) + r / h])
}

/// Rebuilds PyTorch-layout layer weights from GPU buffers' contents (`[w_ih, bias, w_rec, peep]`).
/// With bias on, `b_ih` receives `bias` and `b_hh` `bias_hh` (the GPU keeps only their sum).
pub(crate) fn layer_from_gpu(
    parts: &[Vec<f32>; 4],
    input: usize,
    hidden: usize,
    bias: bool,
    peephole: crate::Peephole,
    bias_hh: Option<Array1<f32>>,
) -> LayerWeights {
    let (w_hh, w_ch) = split_recurrent(&parts[2], hidden, peephole == crate::Peephole::Full);
    let b = deinterleave_vec(&parts[1]);
    LayerWeights {
        w_ih: deinterleave_rows(&parts[0], input),
        w_hh,
        b_ih: bias.then(|| b.clone()),
        b_hh: bias.then(|| bias_hh.unwrap_or_else(|| b.clone())),
        peephole: match peephole {
            crate::Peephole::None => PeepholeWeights::None,
            crate::Peephole::Diagonal => PeepholeWeights::Diagonal(peephole_from_gpu(&parts[3])),
            crate::Peephole::Full => PeepholeWeights::Full(w_ch.expect("full")),
        },
    }
}

/// `v` as f16 (IEEE round-to-nearest-even), two to a `u32`: element `2m` in the low
/// half, `2m + 1` in the high half (`unpack2x16float`'s order). `weights_f16.wgsl`
/// reads them as `vec2<u32>`s (four weights): `v` is a recurrent matrix of `4H × K`
/// weights, always whole fours, so no padding is needed, and none may be added (a
/// stacked direction 1 starts right after direction 0's bytes).
pub(crate) fn f16_pairs(v: &[f32]) -> Vec<u32> {
    debug_assert!(v.len().is_multiple_of(4), "4H·K weights");
    let bits = |x: f32| u32::from(half::f16::from_f32(x).to_bits());
    v.chunks(2)
        .map(|p| bits(p[0]) | (bits(p.get(1).copied().unwrap_or(0.0)) << 16))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LstmConfig, LstmWeights, Peephole};

    #[test]
    fn pack_and_unpack_are_inverse() {
        for mode in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            let w = LstmWeights::init(&LstmConfig::new(3, 5).peephole(mode), 1).unwrap();
            let l = &w.layers[0];
            assert_eq!(
                deinterleave_rows(&interleave_rows(l.w_ih.view()), 3),
                l.w_ih
            );
            let parts = [
                interleave_rows(l.w_ih.view()),
                interleave_vec(l.b_ih.as_ref().unwrap().view()),
                recurrent_matrix(l),
                peephole_vec(l),
            ];
            let back = layer_from_gpu(&parts, 3, 5, true, mode, l.b_hh.clone());
            assert_eq!(back.w_hh, l.w_hh);
            assert_eq!(back.peephole, l.peephole);
            assert_eq!(back.b_ih, l.b_ih);
        }
    }
}

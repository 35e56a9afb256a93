//! Every trained tensor of a classifier in one fixed host order — per layer-direction
//! `w_ih`, `w_hh`, the (folded) bias, the peepholes; then the Dense weight and bias —
//! as slices (the CPU optimizer's list) or as one flat vector (what
//! [`Classifier::gradients`](super::Classifier::gradients) returns and data-parallel
//! training all-reduces, the same on either device).

use super::model::ClassifierParams;
use crate::error::{LstmError, Result};
use crate::weights::PeepholeWeights;

/// Gives every array the row-major layout the flat optimizer works on (a caller may
/// hand in transposed or sliced arrays).
pub(crate) fn standardize(p: &mut ClassifierParams) {
    fn fix<D: ndarray::Dimension>(a: &mut ndarray::Array<f32, D>) {
        if !a.is_standard_layout() {
            *a = a.as_standard_layout().into_owned();
        }
    }
    for l in p.lstm.layers.iter_mut() {
        fix(&mut l.w_ih);
        fix(&mut l.w_hh);
        l.b_ih.iter_mut().chain(l.b_hh.iter_mut()).for_each(fix);
        match &mut l.peephole {
            PeepholeWeights::None => {}
            PeepholeWeights::Diagonal(v) => fix(v),
            PeepholeWeights::Full(m) => fix(m),
        }
    }
    fix(&mut p.dense.weight);
    fix(&mut p.dense.bias);
}

/// Every trained tensor, in the fixed order (arrays in standard layout: see
/// [`standardize`]).
pub(crate) fn param_slices(p: &mut ClassifierParams) -> Vec<&mut [f32]> {
    let mut out: Vec<&mut [f32]> = Vec::new();
    for l in p.lstm.layers.iter_mut() {
        out.push(l.w_ih.as_slice_mut().expect("standard layout"));
        out.push(l.w_hh.as_slice_mut().expect("standard layout"));
        if let Some(b) = l.b_ih.as_mut() {
            out.push(b.as_slice_mut().expect("standard layout"));
        }
        match &mut l.peephole {
            PeepholeWeights::None => {}
            PeepholeWeights::Diagonal(v) => out.push(v.as_slice_mut().expect("standard layout")),
            PeepholeWeights::Full(m) => out.push(m.as_slice_mut().expect("standard layout")),
        }
    }
    out.push(p.dense.weight.as_slice_mut().expect("standard layout"));
    out.push(p.dense.bias.as_slice_mut().expect("standard layout"));
    out
}

/// The trained tensors of `p` end to end, in the fixed order (`b_ih` stands for the
/// folded bias; `b_hh` is not a trained tensor).
pub fn flatten(p: &ClassifierParams) -> Vec<f32> {
    let mut p = p.clone();
    standardize(&mut p);
    param_slices(&mut p).concat()
}

/// The inverse of [`flatten`]: `flat` written into the tensors of `p`.
pub fn unflatten_into(p: &mut ClassifierParams, flat: &[f32]) -> Result<()> {
    standardize(p);
    let mut slices = param_slices(p);
    let want: usize = slices.iter().map(|s| s.len()).sum();
    if want != flat.len() {
        return Err(LstmError::shape(
            "flat parameter vector",
            format!("{want} floats (every trained tensor)"),
            flat.len().to_string(),
        ));
    }
    let mut at = 0;
    for s in slices.iter_mut() {
        s.copy_from_slice(&flat[at..at + s.len()]);
        at += s.len();
    }
    Ok(())
}

//! Inputs and outputs of a forward pass, and the checks every path shares.

use ndarray::{Array3, ArrayView, ArrayView3, CowArray, Dimension, Ix3};

use crate::config::LstmConfig;
use crate::error::{LstmError, Result};

/// Recurrent state of every layer-direction: `h` and `c` are `[L·D, B, H]` (PyTorch's `h_0`/`c_0`).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmState {
    pub h: Array3<f32>,
    pub c: Array3<f32>,
}

/// Result of a forward pass, in PyTorch's shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmOutput {
    /// `[T, B, D·H]`, or `[B, T, D·H]` when the config is batch-first.
    /// Zero past each sequence's length.
    pub y: Array3<f32>,
    /// `[L·D, B, H]`: state at each sequence's last valid step.
    pub h_n: Array3<f32>,
    pub c_n: Array3<f32>,
}

/// Optional parts of a forward call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardOptions<'a> {
    /// Initial `(h_0, c_0)`; zeros when `None`.
    pub initial: Option<&'a LstmState>,
    /// Valid length of each batch element (1..=T); all `T` when `None`.
    pub seq_lens: Option<&'a [usize]>,
}

/// Sequence length and batch size of a checked call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub t: usize,
    pub b: usize,
}

/// The first NaN or infinity in `a` (in memory order), if any. A contiguous array is
/// scanned in blocks whose test has no branch per element (it vectorises: the check of
/// S1's input was 1 % of its forward as an element-by-element search); the value is
/// looked up only in the block that has one.
pub(crate) fn first_non_finite<D: Dimension>(a: &ArrayView<f32, D>) -> Option<f32> {
    const EXPONENT: u32 = 0x7f80_0000; // all ones: an infinity or a NaN
    let Some(all) = a.as_slice_memory_order() else {
        return a.iter().copied().find(|v| !v.is_finite());
    };
    // A fold, not `any`: without an early exit the block's loop vectorises.
    let has = |block: &[f32]| {
        (block.iter()).fold(false, |seen, v| seen | (v.to_bits() & EXPONENT == EXPONENT))
    };
    all.chunks(256)
        .find(|block| has(block))
        .and_then(|block| block.iter().copied().find(|v| !v.is_finite()))
}

/// Validates `x` and the options against the config; every path calls this first.
pub(crate) fn check_inputs(
    config: &LstmConfig,
    x: &ArrayView3<f32>,
    opts: &ForwardOptions,
) -> Result<Dims> {
    config.validate()?;
    let (d0, d1, feat) = x.dim();
    let (t, b) = if config.batch_first {
        (d1, d0)
    } else {
        (d0, d1)
    };
    let layout = if config.batch_first {
        "[B, T, I]"
    } else {
        "[T, B, I]"
    };
    if feat != config.input_size {
        return Err(LstmError::shape(
            format!("input x {layout}"),
            format!("last dimension = input_size {}", config.input_size),
            format!("{:?}", x.shape()),
        ));
    }
    if t == 0 || b == 0 {
        return Err(LstmError::shape(
            format!("input x {layout}"),
            "T ≥ 1 and B ≥ 1",
            format!("{:?}", x.shape()),
        ));
    }
    if let Some(v) = first_non_finite(x) {
        return Err(LstmError::value("input x", format!("contains {v}")));
    }
    let ld = config.num_layers * config.num_directions();
    if let Some(s) = opts.initial {
        let want = [ld, b, config.hidden_size];
        for (name, a) in [("h_0", &s.h), ("c_0", &s.c)] {
            if a.shape() != want {
                return Err(LstmError::shape(
                    format!("initial state {name} [L·D, B, H]"),
                    format!("{want:?}"),
                    format!("{:?}", a.shape()),
                ));
            }
            if let Some(v) = first_non_finite(&a.view()) {
                return Err(LstmError::value(
                    format!("initial state {name}"),
                    format!("contains {v}"),
                ));
            }
        }
    }
    if let Some(lens) = opts.seq_lens {
        if lens.len() != b {
            return Err(LstmError::shape(
                "seq_lens",
                format!("[{b}] (one per batch element)"),
                format!("[{}]", lens.len()),
            ));
        }
        if let Some((i, &l)) = lens.iter().enumerate().find(|(_, &l)| l == 0 || l > t) {
            return Err(LstmError::value(
                format!("seq_lens[{i}]"),
                format!("{l} is outside 1..={t}"),
            ));
        }
    }
    Ok(Dims { t, b })
}

/// The input as an owned time-major `[T, B, I]` array (what every kernel consumes).
pub(crate) fn to_time_major(config: &LstmConfig, x: &ArrayView3<f32>) -> Array3<f32> {
    time_major(config, x).into_owned()
}

/// The input as a time-major `[T, B, I]` array in standard layout: `x` itself where it
/// is one already (no copy), else a copy.
pub(crate) fn time_major<'a>(
    config: &LstmConfig,
    x: &ArrayView3<'a, f32>,
) -> CowArray<'a, f32, Ix3> {
    let v = match config.batch_first {
        true => x.permuted_axes([1, 0, 2]),
        false => *x,
    };
    match v.is_standard_layout() {
        true => v.into(),
        false => v.as_standard_layout().into_owned().into(),
    }
}

/// A time-major `[T, B, F]` output in the caller's layout.
pub(crate) fn from_time_major(config: &LstmConfig, y: Array3<f32>) -> Array3<f32> {
    if config.batch_first {
        let mut y = y;
        y.swap_axes(0, 1);
        y.as_standard_layout().into_owned()
    } else {
        y
    }
}

/// Per-batch valid lengths, defaulting to `T`.
pub(crate) fn lengths(dims: Dims, opts: &ForwardOptions) -> Vec<usize> {
    opts.seq_lens
        .map(<[usize]>::to_vec)
        .unwrap_or_else(|| vec![dims.t; dims.b])
}

/// Zero state `[L·D, B, H]` for a config.
pub(crate) fn zero_state(config: &LstmConfig, b: usize) -> LstmState {
    let shape = (
        config.num_layers * config.num_directions(),
        b,
        config.hidden_size,
    );
    LstmState {
        h: Array3::zeros(shape),
        c: Array3::zeros(shape),
    }
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;
    use ndarray::{s, Array2};

    #[test]
    fn first_non_finite_finds_the_first_nan_or_infinity_anywhere() {
        // Finite extremes pass: the largest f32, a subnormal, -0.
        let mut a = Array2::from_shape_fn((7, 300), |(r, c)| (r * 300 + c) as f32 - 999.5);
        a[[0, 0]] = f32::MAX;
        a[[1, 1]] = f32::MIN_POSITIVE / 2.0;
        a[[2, 2]] = -0.0;
        assert_eq!(first_non_finite(&a.view()), None);
        // In the first block, across a block's end (256), the very last element.
        for (at, v) in [
            (3, f32::NAN),
            (255, f32::INFINITY),
            (256, f32::NEG_INFINITY),
        ] {
            let mut b = a.clone();
            b[[at / 300, at % 300]] = v;
            b[[6, 299]] = f32::NAN;
            let got = first_non_finite(&b.view()).unwrap();
            assert_eq!(got.to_bits(), v.to_bits(), "at {at}");
        }
        let mut b = a.clone();
        b[[6, 299]] = f32::INFINITY;
        assert_eq!(first_non_finite(&b.view()), Some(f32::INFINITY));
        // A strided view: only its own elements count.
        b[[6, 299]] = 0.0;
        b[[5, 1]] = f32::NAN;
        assert_eq!(first_non_finite(&b.slice(s![.., ..;2])), None);
        assert!(first_non_finite(&b.slice(s![.., 1..;2])).unwrap().is_nan());
    }
}

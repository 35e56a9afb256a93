//! Inputs and outputs of a forward pass, and the checks every path shares.

use ndarray::{Array3, ArrayView3};

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
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
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
            if let Some(v) = a.iter().find(|v| !v.is_finite()) {
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
    let v = if config.batch_first {
        x.permuted_axes([1, 0, 2])
    } else {
        *x
    };
    v.as_standard_layout().into_owned()
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

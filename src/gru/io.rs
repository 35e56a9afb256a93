//! What a GRU forward takes and returns, and the input checks every path shares.

use ndarray::{Array3, ArrayView3};

use super::config::GruConfig;
use crate::error::{LstmError, Result};
use crate::sequence::{check_inputs, Dims, ForwardOptions};

/// Optional parts of a GRU forward call.
#[derive(Clone, Copy, Debug, Default)]
pub struct GruOptions<'a> {
    /// Initial `h_0` `[L·D, B, H]`; zeros when `None`.
    pub initial: Option<&'a Array3<f32>>,
    /// Valid length of each batch element (1..=T); all `T` when `None`.
    pub seq_lens: Option<&'a [usize]>,
}

/// Result of a GRU forward, in PyTorch's shapes (a GRU has no `c_n`).
#[derive(Clone, Debug, PartialEq)]
pub struct GruOutput {
    /// `[T, B, D·H]`, or `[B, T, D·H]` when batch-first; zero past each length.
    pub y: Array3<f32>,
    /// `[L·D, B, H]`: the state at each sequence's last valid step.
    pub h_n: Array3<f32>,
}

/// Checks `x` and the options against the config, as every path does first.
pub(crate) fn check_gru_inputs(
    config: &GruConfig,
    x: &ArrayView3<f32>,
    opts: &GruOptions,
) -> Result<Dims> {
    let dims = check_inputs(
        &config.layout(),
        x,
        &ForwardOptions {
            initial: None,
            seq_lens: opts.seq_lens,
        },
    )?;
    if let Some(h0) = opts.initial {
        let want = [
            config.num_layers * config.num_directions(),
            dims.b,
            config.hidden_size,
        ];
        if h0.shape() != want {
            return Err(LstmError::shape(
                "initial state h_0 [L·D, B, H]",
                format!("{want:?}"),
                format!("{:?}", h0.shape()),
            ));
        }
        if let Some(v) = crate::sequence::first_non_finite(&h0.view()) {
            return Err(LstmError::value(
                "initial state h_0",
                format!("contains {v}"),
            ));
        }
    }
    Ok(dims)
}

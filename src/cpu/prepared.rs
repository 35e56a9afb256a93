//! [`CpuLstm`]: an LSTM on the CPU path whose weights are packed for its kernels once,
//! not on every call.

use ndarray::ArrayView3;

use super::forward::forward_impl;
use super::packs::LayerPacks;
use crate::config::LstmConfig;
use crate::error::Result;
use crate::sequence::{ForwardOptions, LstmOutput};
use crate::weights::LstmWeights;

/// An LSTM for repeated CPU forwards (serving, evaluation), the CPU twin of
/// [`crate::GpuLstm`]: the weights are validated once, and each matrix is packed into the
/// layout of the CPU kernels the first time a forward needs it and kept. [`super::forward()`]
/// packs per call and only what its shape repays; here the input projection always runs
/// through packed weights (at T = 25 a one-off forward spends 10–30 % of its time
/// packing; BENCHMARKS.md §20).
///
/// Results are [`super::forward()`]'s to float rounding (below 1,024 rows `T·B` that one
/// sums the input projection with ndarray's GEMM instead), the same on every call and on
/// one thread or two. `Send + Sync`: threads may share one model. The packed copies sit
/// beside the weights: up to twice their memory.
pub struct CpuLstm {
    weights: LstmWeights,
    /// One per layer-direction (`l·D + d`).
    packs: Vec<LayerPacks>,
}

impl CpuLstm {
    /// Validates and keeps a copy of `weights`; packs nothing yet.
    pub fn new(weights: &LstmWeights) -> Result<Self> {
        weights.validate()?;
        let packs = (0..weights.layers.len())
            .map(|_| LayerPacks::new(true))
            .collect();
        Ok(CpuLstm {
            weights: weights.clone(),
            packs,
        })
    }

    pub fn config(&self) -> &LstmConfig {
        &self.weights.config
    }

    pub fn weights(&self) -> &LstmWeights {
        &self.weights
    }

    /// Full sequence forward, like [`super::forward()`]: PyTorch's `(output, (h_n, c_n))`.
    pub fn forward(&self, x: ArrayView3<f32>, opts: ForwardOptions) -> Result<LstmOutput> {
        forward_impl(&self.weights, &self.packs, x, opts, None)
    }
}

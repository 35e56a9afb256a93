//! `GpuGru`: a GRU on the GPU. Its weights sit in the LSTM's four gate slots
//! (`pack::gru_layer`) and `gru_step.wgsl` supplies the pointwise math, so the LSTM's
//! schedule runs it unchanged: layers, both directions, lengths, chunking of long
//! sequences, a job reused while the shape repeats.

use std::sync::Arc;

use ndarray::{Array3, ArrayView3};

use super::context::GpuContext;
use super::kernels::lstm_step::StepTiling;
use super::lstm::GpuLstm;
use super::pack;
use super::weights::GpuWeights;
use crate::cpu::{GruGradients, GruUpstream, Upstream};
use crate::error::Result;
use crate::gru::{check_gru_inputs, GruConfig, GruOptions, GruOutput, GruWeights};
use crate::sequence::{ForwardOptions, LstmState};

/// A GRU whose weights live on one GPU, in either form: the reset gate after the
/// recurrent product (PyTorch; one dispatch per step) or before it (`reset_after =
/// false`: `gru_reset_before_step`, two dispatches per step).
pub struct GpuGru {
    config: GruConfig,
    inner: GpuLstm,
}

impl GpuGru {
    /// Validates and uploads `weights`; fails if a weight matrix exceeds the device's
    /// limits.
    pub fn new(ctx: Arc<GpuContext>, weights: &GruWeights) -> Result<Self> {
        let uploaded = GpuWeights::upload_gru(&ctx, weights)?;
        Ok(GpuGru {
            config: weights.config.clone(),
            inner: GpuLstm::from_uploaded(ctx, uploaded),
        })
    }

    pub fn config(&self) -> &GruConfig {
        &self.config
    }

    /// Forces a tiling of the step kernel (the default picks by batch size).
    pub fn set_tiling(&mut self, tiling: StepTiling) {
        self.inner.set_tiling(tiling);
    }

    /// NaN-fill every output and scratch buffer first (tests: unwritten elements show).
    pub fn set_poison_outputs(&mut self, on: bool) {
        self.inner.set_poison_outputs(on);
    }

    /// Forward pass from host arrays; one submit and exactly one readback.
    pub fn forward(&self, x: ArrayView3<f32>, opts: GruOptions) -> Result<GruOutput> {
        check_gru_inputs(&self.config, &x, &opts)?;
        let initial = opts.initial.map(lstm_state);
        let out = self.inner.forward(x, lstm_options(&initial, &opts))?;
        Ok(GruOutput {
            y: out.y,
            h_n: out.h_n,
        })
    }

    /// Forward and BPTT in one submit and one readback (`gru_step_backward.wgsl` or
    /// `gru_reset_before_step_backward.wgsl` in the LSTM's backward schedule); the GPU twin of [`crate::cpu::gru_forward_train`] +
    /// [`crate::cpu::gru_backward()`], returning the same types.
    pub fn forward_backward(
        &self,
        x: ArrayView3<f32>,
        opts: GruOptions,
        up: GruUpstream,
    ) -> Result<(GruOutput, GruGradients)> {
        check_gru_inputs(&self.config, &x, &opts)?;
        let initial = opts.initial.map(lstm_state);
        let lstm_up = Upstream {
            dy: up.dy,
            dh_n: up.dh_n,
            dc_n: None,
        };
        let (out, g) = self
            .inner
            .forward_backward(x, lstm_options(&initial, &opts), lstm_up)?;
        let params = GruWeights {
            config: self.config.clone(),
            layers: (g.params.layers.iter())
                .map(|l| pack::gru_from_slots(l, self.config.reset_after))
                .collect(),
        };
        let out = GruOutput {
            y: out.y,
            h_n: out.h_n,
        };
        Ok((
            out,
            GruGradients {
                params,
                dx: g.dx,
                dh0: g.dh0,
            },
        ))
    }
}

/// The schedule carries an LSTM state; a GRU's c half stays zero.
fn lstm_state(h: &Array3<f32>) -> LstmState {
    LstmState {
        h: h.clone(),
        c: Array3::zeros(h.raw_dim()),
    }
}

fn lstm_options<'a>(initial: &'a Option<LstmState>, opts: &GruOptions<'a>) -> ForwardOptions<'a> {
    ForwardOptions {
        initial: initial.as_ref(),
        seq_lens: opts.seq_lens,
    }
}

//! `GpuGru`: a GRU on the GPU. Its weights sit in the LSTM's four gate slots
//! (`pack::gru_layer`) and `gru_step.wgsl` supplies the pointwise math, so the LSTM's
//! schedule runs it unchanged: layers, both directions, lengths, chunking of long
//! sequences, a job reused while the shape repeats.

use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

use super::context::GpuContext;
use super::kernels::lstm_step::StepTiling;
use super::lstm::GpuLstm;
use super::pack;
use super::stream::GpuStream;
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

/// A stateful GRU stream on the GPU (Keras `GRU(stateful=True)`): the LSTM schedule's
/// [`GpuStream`] over the GRU's slots, its `h` resident between pushes (the c half
/// stays zero). Any split of a sequence gives one forward's outputs, bit for bit.
/// CPU twin: `cpu::CpuGruStream`.
pub struct GpuGruStream<'m> {
    inner: GpuStream<'m>,
    layers: usize,
    hidden: usize,
}

impl GpuGru {
    /// A stream of `batch` rows from a zero state (not for bidirectional models).
    pub fn stream(&self, batch: usize) -> Result<GpuGruStream<'_>> {
        Ok(GpuGruStream {
            inner: self.inner.stream(batch)?,
            layers: self.config.num_layers,
            hidden: self.config.hidden_size,
        })
    }
}

impl GpuGruStream<'_> {
    pub fn batch(&self) -> usize {
        self.inner.batch()
    }

    /// Runs the window `x` from the stream's state; the state moves on.
    pub fn push(&mut self, x: ArrayView3<f32>) -> Result<Array3<f32>> {
        self.inner.push(x)
    }

    /// The current state `[L, B, H]` (a readback).
    pub fn state(&self) -> Result<Array3<f32>> {
        Ok(self.inner.state()?.h)
    }

    /// Replaces the whole state `[L, B, H]`.
    pub fn set_state(&mut self, h: &Array3<f32>) -> Result<()> {
        self.inner.set_state(&lstm_state(h))
    }

    /// Zeroes the state of every row.
    pub fn reset(&mut self) -> Result<()> {
        self.inner.reset()
    }

    /// Zeroes the state of the given rows; the other rows carry on.
    pub fn reset_rows(&mut self, rows: &[usize]) -> Result<()> {
        self.inner.reset_rows(rows)
    }

    /// Sets the state of one row: `h` `[L, H]`.
    pub fn set_row(&mut self, row: usize, h: ArrayView2<f32>) -> Result<()> {
        let zeros = Array2::zeros((self.layers, self.hidden));
        self.inner.set_row(row, h, zeros.view())
    }
}

//! `GpuLstmp`: an LSTM with a projection (PyTorch's `proj_size`) on the GPU. Each layer
//! runs as a plain `GpuLstm` over `m = o ⊙ tanh c` with `W_hh W_hr` as its recurrent
//! weights (`lstmp_fold`: one fused dispatch per step, the LSTM's kernels and backward
//! unchanged); the projection `y = W_hr m` of every step runs after the layer's steps.

use std::sync::Arc;

use ndarray::ArrayView3;

use super::context::GpuContext;
use super::kernels::lstm_step::StepTiling;
use super::lstm::GpuLstm;
use super::lstmp_fold::{self, FoldedLayers};
use crate::cpu::{check_lstmp_upstream, Gradients, LstmpGradients, Upstream};
use crate::error::Result;
use crate::lstmp::{check_lstmp_inputs, LstmpConfig, LstmpOutput, LstmpWeights};
use crate::sequence::{from_time_major, lengths, to_time_major, ForwardOptions, LstmOutput};

/// An LSTMP whose (folded) weights live on one GPU.
pub struct GpuLstmp {
    weights: LstmpWeights,
    /// Per layer: the folded LSTM, and its variant with the `h_0` input columns.
    plain: Vec<GpuLstm>,
    with_state: Vec<GpuLstm>,
}

impl GpuLstmp {
    /// Validates, folds and uploads `weights` (both variants of every layer).
    pub fn new(ctx: Arc<GpuContext>, weights: &LstmpWeights) -> Result<Self> {
        weights.validate()?;
        let upload = |state: bool| {
            (0..weights.config.num_layers)
                .map(|l| GpuLstm::new(ctx.clone(), &lstmp_fold::fold_layer(weights, l, state)?))
                .collect::<Result<Vec<_>>>()
        };
        Ok(GpuLstmp {
            weights: weights.clone(),
            plain: upload(false)?,
            with_state: upload(true)?,
        })
    }

    pub fn config(&self) -> &LstmpConfig {
        &self.weights.config
    }

    /// Forces a tiling of the step kernel (the default picks by batch size).
    pub fn set_tiling(&mut self, tiling: StepTiling) {
        self.models_mut().for_each(|m| m.set_tiling(tiling));
    }

    /// NaN-fill every output and scratch buffer first (tests: unwritten elements show).
    pub fn set_poison_outputs(&mut self, on: bool) {
        self.models_mut().for_each(|m| m.set_poison_outputs(on));
    }

    fn models_mut(&mut self) -> impl Iterator<Item = &mut GpuLstm> {
        self.plain.iter_mut().chain(self.with_state.iter_mut())
    }

    /// Forward pass: `y` `[T, B, D·P]`, `h_n` `[L·D, B, P]`, `c_n` `[L·D, B, H]`.
    pub fn forward(&self, x: ArrayView3<f32>, opts: ForwardOptions) -> Result<LstmpOutput> {
        let cfg = &self.weights.config;
        let dims = check_lstmp_inputs(cfg, &x, &opts)?;
        let lens = lengths(dims, &opts);
        let xt = to_time_major(&cfg.layout(), &x);
        let state = opts.initial.is_some();
        let run = lstmp_fold::forward(self, &self.weights, xt, opts.initial, state, &lens)?;
        Ok(LstmpOutput {
            y: from_time_major(&cfg.layout(), run.y),
            h_n: run.h_n,
            c_n: run.c_n,
        })
    }

    /// Forward and BPTT; the GPU twin of [`crate::cpu::lstmp_forward_train`] +
    /// [`crate::cpu::lstmp_backward`], returning the same types.
    pub fn forward_backward(
        &self,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        up: Upstream,
    ) -> Result<(LstmpOutput, LstmpGradients)> {
        let cfg = &self.weights.config;
        let dims = check_lstmp_inputs(cfg, &x, &opts)?;
        check_lstmp_upstream(cfg, &up, dims.t, dims.b)?;
        let lens = lengths(dims, &opts);
        let layout = cfg.layout();
        let xt = to_time_major(&layout, &x);
        let run = lstmp_fold::forward(self, &self.weights, xt, opts.initial, true, &lens)?;
        let dy = up.dy.map(|dy| to_time_major(&layout, &dy));
        let up_tm = Upstream {
            dy: dy.as_ref().map(|a| a.view()),
            dh_n: up.dh_n.map(|a| a.reborrow()),
            dc_n: up.dc_n.map(|a| a.reborrow()),
        };
        let g = lstmp_fold::backward(self, &self.weights, &run, opts.initial, &lens, up_tm)?;
        let mut params = g.params;
        params.config = cfg.clone();
        let out = LstmpOutput {
            y: from_time_major(&layout, run.y),
            h_n: run.h_n,
            c_n: run.c_n,
        };
        let grads = LstmpGradients {
            params,
            dx: from_time_major(&layout, g.dx),
            dh0: g.dh0,
            dc0: g.dc0,
        };
        Ok((out, grads))
    }

    fn layer(&self, l: usize, state: bool) -> &GpuLstm {
        match state {
            true => &self.with_state[l],
            false => &self.plain[l],
        }
    }
}

impl FoldedLayers for GpuLstmp {
    fn forward(
        &self,
        l: usize,
        state: bool,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
    ) -> Result<LstmOutput> {
        self.layer(l, state).forward(x, opts)
    }

    fn forward_backward(
        &self,
        l: usize,
        state: bool,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        up: Upstream,
    ) -> Result<(LstmOutput, Gradients)> {
        self.layer(l, state).forward_backward(x, opts, up)
    }
}

//! `GpuLstm`: weights uploaded once, forward run many times — from host arrays
//! (chunked to fit the device) or resident on the GPU (chained, streamed).

use std::sync::{Arc, Mutex};

use ndarray::{Array3, ArrayView3};

use super::buffers::{storage_init, GpuSequence, GpuState};
use super::context::GpuContext;
use super::forward::{self, RecordOptions, RunBuffers, RunInputs, Start};
use super::host_forward::{joined, HostForward};
use super::kernels::lstm_step::StepTiling;
use super::plan::{ChunkPlan, MAX_CHUNK_STEPS};
use super::timer::{ForwardProfile, PassTimer};
use super::weights::GpuWeights;
use crate::config::LstmConfig;
use crate::error::{LstmError, Result};
use crate::sequence::{
    check_inputs, from_time_major, lengths, time_major, Dims, ForwardOptions, LstmOutput, LstmState,
};
use crate::weights::LstmWeights;

/// What [`GpuLstm::forward_resident`] leaves on the GPU.
pub struct GpuForwardOutput {
    pub y: GpuSequence,
    pub state: GpuState,
}

/// An LSTM whose weights live on one GPU.
pub struct GpuLstm {
    pub(crate) ctx: Arc<GpuContext>,
    pub(crate) weights: GpuWeights,
    tiling: StepTiling,
    poison: bool,
    /// The buffers and bind groups of the last host forward's shape, reused while the
    /// shape repeats (a repeated call creates nothing).
    host_forward: Mutex<Option<HostForward>>,
}

impl GpuLstm {
    /// Validates and uploads `weights`; fails if a weight matrix exceeds the device's limits.
    pub fn new(ctx: Arc<GpuContext>, weights: &LstmWeights) -> Result<Self> {
        let w = GpuWeights::upload(&ctx, weights)?;
        Ok(Self::from_uploaded(ctx, w))
    }

    /// [`GpuLstm::new`] with the recurrent weights stored as f16, f32 math (inference;
    /// `forward_backward` refuses it; error and speed: BENCHMARKS.md §17).
    pub fn new_f16(ctx: Arc<GpuContext>, weights: &LstmWeights) -> Result<Self> {
        let w = GpuWeights::upload_f16(&ctx, weights)?;
        Ok(Self::from_uploaded(ctx, w))
    }

    /// A model over weights already on the GPU (an LSTM's, or a GRU's in its slots).
    pub(crate) fn from_uploaded(ctx: Arc<GpuContext>, weights: GpuWeights) -> Self {
        GpuLstm {
            ctx,
            weights,
            tiling: StepTiling::Auto,
            poison: false,
            host_forward: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &LstmConfig {
        &self.weights.config
    }
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Forces a tiling of the step kernel (the default picks by batch size).
    pub fn set_tiling(&mut self, tiling: StepTiling) {
        self.tiling = tiling;
    }

    /// NaN-fill every per-call output and scratch buffer first (tests: unwritten elements show).
    pub fn set_poison_outputs(&mut self, on: bool) {
        self.poison = on;
    }

    /// Forward pass from host arrays; one submit and exactly one readback.
    pub fn forward(&self, x: ArrayView3<f32>, opts: ForwardOptions) -> Result<LstmOutput> {
        Ok(self.forward_impl(x, opts, false)?.0)
    }

    /// [`GpuLstm::forward`] with GPU timestamps around the input projections and the
    /// step chains (`None` without timestamp queries). Each gets a compute pass of its
    /// own; the results are the same. Still one submit and one readback.
    pub fn forward_profiled(
        &self,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
    ) -> Result<(LstmOutput, Option<ForwardProfile>)> {
        self.forward_impl(x, opts, true)
    }

    fn forward_impl(
        &self,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        profile: bool,
    ) -> Result<(LstmOutput, Option<ForwardProfile>)> {
        let cfg = self.config();
        let dims = check_inputs(cfg, &x, &opts)?;
        let plan = self.plan(dims.t, dims.b)?;
        // Borrowed where `x` is time-major already: no copy before the upload's own.
        let xt = time_major(cfg, &x);
        let lens = lengths(dims, &opts);
        let ctx = &self.ctx;
        let initial = opts.initial;
        let opts = self.record_options(dims.b, false);
        let (data, timing) = ctx.scoped("forward pass", || {
            let mut cache = self.host_forward.lock().unwrap_or_else(|e| e.into_inner());
            // Poisoned runs (tests) get fresh NaN-filled buffers every call.
            if self.poison || !cache.as_ref().is_some_and(|c| c.fits(&plan, dims.b, &opts)) {
                *cache = Some(HostForward::build(ctx, &self.weights, plan, dims.b, &opts)?);
            }
            let job = cache
                .as_ref()
                .ok_or_else(|| LstmError::value("forward", "no job"))?;
            let timer = if profile {
                PassTimer::new(ctx, job.pass_count())
            } else {
                None
            };
            let flat =
                |a: &Array3<f32>| a.as_standard_layout().iter().copied().collect::<Vec<f32>>();
            let x_flat = xt.as_slice().expect("time_major gives standard layout");
            let init = initial.map(|s| (flat(&s.h), flat(&s.c)));
            let init = init.as_ref().map(|(h, c)| (h.as_slice(), c.as_slice()));
            let run = job.run(ctx, x_flat, init, &lens, timer)?;
            let profile = run.pass_seconds.map(|s| ForwardProfile::from_passes(&s));
            Ok((run.data, profile))
        })?;
        Ok((self.assemble_output(dims, data)?, timing))
    }

    /// `[y chunks…, h_n, c_n]` read back → PyTorch's shapes in the config's layout.
    fn assemble_output(&self, dims: Dims, mut data: Vec<Vec<f32>>) -> Result<LstmOutput> {
        let cfg = self.config();
        let sshape = (
            cfg.num_layers * cfg.num_directions(),
            dims.b,
            cfg.hidden_size,
        );
        let shape_err = |e: ndarray::ShapeError| {
            LstmError::shape("GPU readback", "the planned sizes", e.to_string())
        };
        let c_n = data.pop().unwrap_or_default();
        let h_n = data.pop().unwrap_or_default();
        let y = joined(data);
        let y =
            Array3::from_shape_vec((dims.t, dims.b, cfg.output_size()), y).map_err(shape_err)?;
        Ok(LstmOutput {
            y: from_time_major(cfg, y),
            h_n: Array3::from_shape_vec(sshape, h_n).map_err(shape_err)?,
            c_n: Array3::from_shape_vec(sshape, c_n).map_err(shape_err)?,
        })
    }

    /// Uploads a host sequence (in the config's layout) as a time-major GPU sequence.
    pub fn upload_sequence(&self, x: ArrayView3<f32>) -> Result<GpuSequence> {
        let dims = check_inputs(self.config(), &x, &ForwardOptions::default())?;
        let xt = time_major(self.config(), &x);
        let data = xt.as_slice().expect("time_major gives standard layout");
        let buffer = self
            .ctx
            .scoped("upload", || Ok(storage_init(&self.ctx, "sequence", data)))?;
        Ok(GpuSequence {
            buffer,
            t: dims.t,
            b: dims.b,
            features: self.config().input_size,
        })
    }

    /// Forward pass that stays on the GPU: input, outputs and states are GPU buffers,
    /// nothing is read back, so calls chain (feed `y` to the next model, or `state`
    /// back as the initial state of the next window of a stream). The sequence must
    /// fit one storage binding; [`GpuLstm::forward`] chunks longer ones.
    pub fn forward_resident(
        &self,
        x: &GpuSequence,
        initial: Option<&GpuState>,
        seq_lens: Option<&[usize]>,
    ) -> Result<GpuForwardOutput> {
        let plan = self.check_resident(x, initial, seq_lens)?;
        let cfg = self.config();
        let lens = seq_lens
            .map(<[usize]>::to_vec)
            .unwrap_or_else(|| vec![x.t; x.b]);
        let ctx = &self.ctx;
        ctx.scoped("resident forward pass", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let inputs = RunInputs {
                x_chunks: std::slice::from_ref(&x.buffer),
                initial: initial.map_or(Start::Zero, Start::From),
                lens: &lens,
                b: x.b,
            };
            let run = self.record(&mut encoder, &plan, &inputs, false)?;
            ctx.queue.submit([encoder.finish()]);
            let y = run
                .y_chunks
                .into_iter()
                .next()
                .ok_or_else(|| LstmError::value("resident forward", "no output chunk"))?;
            Ok(GpuForwardOutput {
                y: GpuSequence {
                    buffer: y,
                    t: x.t,
                    b: x.b,
                    features: cfg.output_size(),
                },
                state: GpuState {
                    h: run.h_n,
                    c: run.c_n,
                },
            })
        })
    }

    /// Checks a resident call's operands; returns its (single-chunk) plan.
    fn check_resident(
        &self,
        x: &GpuSequence,
        initial: Option<&GpuState>,
        seq_lens: Option<&[usize]>,
    ) -> Result<ChunkPlan> {
        let cfg = self.config();
        if x.features != cfg.input_size || x.t == 0 || x.b == 0 {
            return Err(LstmError::shape(
                "GPU sequence [T, B, I]",
                format!("[T ≥ 1, B ≥ 1, {}]", cfg.input_size),
                format!("[{}, {}, {}]", x.t, x.b, x.features),
            ));
        }
        let need = [x.t, x.b, x.features, 4]
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64))
            .ok_or_else(|| LstmError::value("GPU sequence", "T·B·F overflows a byte count"))?;
        if x.buffer.size() < need {
            return Err(LstmError::shape(
                "GPU sequence buffer (bytes)",
                format!("≥ {need} for [{}, {}, {}] f32", x.t, x.b, x.features),
                x.buffer.size().to_string(),
            ));
        }
        let plan = self.plan_whole(x.t, x.b)?;
        if plan.count > 1 {
            return Err(LstmError::DeviceLimit(format!(
                "a resident sequence of T={} B={} needs {} chunks of at most {} steps to fit a {}-byte binding; use forward() for chunked runs",
                x.t, x.b, plan.count, plan.len, self.ctx.max_binding_bytes()
            )));
        }
        let state_bytes =
            4 * (cfg.num_layers * cfg.num_directions() * x.b * cfg.hidden_size) as u64;
        if let Some(s) = initial {
            if s.h.size() != state_bytes || s.c.size() != state_bytes {
                return Err(LstmError::shape(
                    "initial GPU state h/c [L·D, B, H] (bytes)",
                    state_bytes.to_string(),
                    format!("{} / {}", s.h.size(), s.c.size()),
                ));
            }
        }
        if let Some(l) = seq_lens {
            if l.len() != x.b || l.iter().any(|&n| n == 0 || n > x.t) {
                return Err(LstmError::value(
                    "seq_lens",
                    format!("need {} lengths in 1..={}, got {l:?}", x.b, x.t),
                ));
            }
        }
        Ok(plan)
    }

    /// Reads a GPU sequence back as a time-major `[T, B, F]` array (one readback).
    pub fn read_sequence(&self, seq: &GpuSequence) -> Result<Array3<f32>> {
        let encoder = self.ctx.device.create_command_encoder(&Default::default());
        let mut data = self.ctx.scoped("readback", || {
            self.ctx
                .submit_and_read(encoder, &[(&seq.buffer, seq.buffer.size())])
        })?;
        Array3::from_shape_vec((seq.t, seq.b, seq.features), data.remove(0)).map_err(|e| {
            LstmError::shape(
                "GPU sequence",
                format!("[{}, {}, {}]", seq.t, seq.b, seq.features),
                e.to_string(),
            )
        })
    }

    /// Reads a GPU state back as `[L·D, B, H]` arrays (one readback for both).
    pub fn read_state(&self, state: &GpuState, batch: usize) -> Result<LstmState> {
        let cfg = self.config();
        let shape = (
            cfg.num_layers * cfg.num_directions(),
            batch,
            cfg.hidden_size,
        );
        let want = [shape.0, shape.1, shape.2, 4]
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64))
            .ok_or_else(|| LstmError::value("batch", "L·D·B·H overflows a byte count"))?;
        if state.h.size() != want || state.c.size() != want {
            return Err(LstmError::shape(
                "GPU state h/c (bytes)",
                want.to_string(),
                format!("{} / {}", state.h.size(), state.c.size()),
            ));
        }
        let encoder = self.ctx.device.create_command_encoder(&Default::default());
        let mut data = self.ctx.scoped("readback", || {
            self.ctx
                .submit_and_read(encoder, &[(&state.h, want), (&state.c, want)])
        })?;
        let c = Array3::from_shape_vec(shape, data.pop().expect("c")).expect("checked size");
        let h = Array3::from_shape_vec(shape, data.pop().expect("h")).expect("checked size");
        Ok(LstmState { h, c })
    }

    /// How the sequence is split into chunks that fit one storage binding (and hold
    /// at most [`MAX_CHUNK_STEPS`] steps).
    pub(crate) fn plan(&self, t: usize, b: usize) -> Result<ChunkPlan> {
        self.plan_with(t, b, MAX_CHUNK_STEPS)
    }

    /// The plan of a path that needs the whole sequence in one chunk (resident runs,
    /// per-step classifier heads): chunks as long as one binding allows.
    pub(crate) fn plan_whole(&self, t: usize, b: usize) -> Result<ChunkPlan> {
        self.plan_with(t, b, usize::MAX)
    }

    fn plan_with(&self, t: usize, b: usize, max_steps: usize) -> Result<ChunkPlan> {
        let cfg = self.config();
        let widest = cfg
            .input_size
            .max(cfg.output_size())
            .max(4 * cfg.hidden_size);
        let limit = self.ctx.max_binding_bytes();
        let sizes = (widest, cfg.hidden_size);
        ChunkPlan::new(t, b, sizes, limit, self.ctx.limits(), max_steps)
    }

    /// Records a forward pass; `train` keeps the cache backward needs.
    pub(crate) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &ChunkPlan,
        inputs: &RunInputs,
        train: bool,
    ) -> Result<RunBuffers> {
        let opts = self.record_options(inputs.b, train);
        forward::record(&self.ctx, &self.weights, encoder, plan, inputs, &opts)
    }

    pub(crate) fn record_options(&self, b: usize, train: bool) -> RecordOptions {
        let shape = (b, self.config().hidden_size);
        let tiling = self.tiling.resolve_for(shape, self.ctx.kernel_forms());
        let poison = self.poison;
        RecordOptions {
            tiling,
            poison,
            train,
        }
    }
}

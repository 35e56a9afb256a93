//! BPTT on the GPU from host arrays: [`GpuLstm::forward_backward`], the GPU twin of
//! `cpu::forward_train` + `cpu::backward`, and `record_backward`, a backward recorded
//! with a job built for one call (`backward_job.rs` holds the schedule).

use ndarray::{Array3, ArrayView3};

use super::backward_job::{BackwardJob, GpuUpstream};
use super::buffers::storage_init;
use super::buffers::GpuState;
use super::context::GpuContext;
use super::forward::{RunInputs, Start};
use super::kernels::Cell;
use super::lstm::GpuLstm;
use super::pack;
use super::train_cache::TrainCache;
use super::weights::{GpuWeights, LayerBuffers};
use crate::cpu::{Gradients, Upstream};
use crate::error::{LstmError, Result};
use crate::sequence::{
    check_inputs, from_time_major, lengths, to_time_major, ForwardOptions, LstmOutput,
};
use crate::weights::LstmWeights;

/// Gradients that flow out of the LSTM, time-major, on the GPU.
pub(crate) struct BackwardOutput {
    /// Per chunk `[Tc, B, I]`.
    pub dx: Vec<wgpu::Buffer>,
    /// `[L·D, B, H]`.
    pub dh0: wgpu::Buffer,
    pub dc0: wgpu::Buffer,
}

/// Records the whole backward pass with a job built for this call; parameter gradients
/// are overwritten into `grads`.
pub(crate) fn record_backward(
    ctx: &GpuContext,
    w: &GpuWeights,
    encoder: &mut wgpu::CommandEncoder,
    cache: &TrainCache,
    up: GpuUpstream,
    grads: &[LayerBuffers],
) -> Result<BackwardOutput> {
    let job = BackwardJob::build(ctx, w, cache, up, grads)?;
    job.record(encoder);
    Ok(BackwardOutput {
        dx: job.dx()?.to_vec(),
        dh0: job.dh0,
        dc0: job.dc0,
    })
}

impl GpuLstm {
    /// Forward and backward on the GPU in one submit and one readback; the GPU twin of
    /// [`crate::cpu::forward_train`] + [`crate::cpu::backward()`], returning the same types.
    /// A sequence longer than one storage binding is split into chunks, as the forward is.
    pub fn forward_backward(
        &self,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        up: Upstream,
    ) -> Result<(LstmOutput, Gradients)> {
        let cfg = self.config();
        let dims = check_inputs(cfg, &x, &opts)?;
        check_upstream(self, &up, dims.t, dims.b)?;
        let plan = self.plan(dims.t, dims.b)?;
        let lens = lengths(dims, &opts);
        let ctx = &self.ctx;
        let flat = |a: &Array3<f32>| a.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        let chunks = |label: &str, a: &Array3<f32>| {
            let (v, row) = (flat(a), a.dim().1 * a.dim().2);
            let part = |r: std::ops::Range<usize>| {
                storage_init(ctx, label, &v[r.start * row..r.end * row])
            };
            plan.ranges().map(part).collect::<Vec<_>>()
        };
        let data = ctx.scoped("forward and backward", || {
            let x_chunks = chunks("x", &to_time_major(cfg, &x));
            let initial = opts.initial.map(|s| GpuState::upload(ctx, s));
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let inputs = RunInputs {
                x_chunks: &x_chunks,
                initial: initial.as_ref().map_or(Start::Zero, Start::From),
                lens: &lens,
                b: dims.b,
            };
            let run = self.record(&mut encoder, &plan, &inputs, true)?;
            let cache = run
                .cache
                .as_ref()
                .ok_or_else(|| LstmError::value("training cache", "missing"))?;
            let dy = up.dy.map(|a| chunks("dy", &to_time_major(cfg, &a)));
            let dh_n = up
                .dh_n
                .map(|a| storage_init(ctx, "dh_n", &flat(&a.to_owned())));
            let dc_n = up
                .dc_n
                .map(|a| storage_init(ctx, "dc_n", &flat(&a.to_owned())));
            let grads = self.weights.zeros_like(ctx);
            let gup = GpuUpstream {
                dy: dy.as_deref(),
                dh_n: dh_n.as_ref(),
                dc_n: dc_n.as_ref(),
            };
            let out = record_backward(ctx, &self.weights, &mut encoder, cache, gup, &grads)?;
            let mut sources: Vec<&wgpu::Buffer> = run.y_chunks.iter().collect();
            sources.extend([&run.h_n, &run.c_n]);
            sources.extend(&out.dx);
            sources.extend([&out.dh0, &out.dc0]);
            for g in &grads {
                sources.extend([&g.w_ih, &g.bias, &g.w_rec, &g.peep]);
            }
            let sized: Vec<(&wgpu::Buffer, u64)> = sources.iter().map(|b| (*b, b.size())).collect();
            ctx.submit_and_read(encoder, &sized)
        })?;
        let data = join_chunks(data, plan.count);
        // A reset-before GRU's dW_rec is [H][4][2H] (see backward_job.rs): read back in
        // the Full-peephole layout, its r ⊙ h columns land in `peephole` for `GpuGru`.
        let rec_layout = match self.weights.cell {
            Cell::GruResetBefore => crate::Peephole::Full,
            Cell::Lstm | Cell::LstmF16 | Cell::Gru => cfg.peephole,
        };
        unpack_forward_backward(cfg, rec_layout, (dims.t, dims.b), data)
    }
}

/// The readback with its per-chunk buffers (y, then dx, each `count` of them) joined.
fn join_chunks(data: Vec<Vec<f32>>, count: usize) -> Vec<Vec<f32>> {
    let mut it = data.into_iter();
    let mut join = |n: usize| -> Vec<f32> { it.by_ref().take(n).flatten().collect() };
    let mut out = vec![join(count), join(1), join(1), join(count)];
    out.extend(it);
    out
}

/// Checks the shapes of the upstream gradients against a `(T, B)` call.
fn check_upstream(model: &GpuLstm, up: &Upstream, t: usize, b: usize) -> Result<()> {
    let cfg = model.config();
    let (h, dirs) = (cfg.hidden_size, cfg.num_directions());
    let yshape = if cfg.batch_first {
        [b, t, dirs * h]
    } else {
        [t, b, dirs * h]
    };
    let sshape = [cfg.num_layers * dirs, b, h];
    for (name, shape, want) in [
        ("dy", up.dy.map(|a| a.shape().to_vec()), &yshape[..]),
        ("dh_n", up.dh_n.map(|a| a.shape().to_vec()), &sshape[..]),
        ("dc_n", up.dc_n.map(|a| a.shape().to_vec()), &sshape[..]),
    ] {
        if let Some(s) = shape {
            if s != want {
                return Err(LstmError::shape(
                    name,
                    format!("{want:?}"),
                    format!("{s:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// The readback of [`GpuLstm::forward_backward`] (y, h_n, c_n, dx, dh0, dc0, then four
/// gradient buffers per layer-direction) in the CPU path's types.
fn unpack_forward_backward(
    cfg: &crate::LstmConfig,
    rec_layout: crate::Peephole,
    (t, b): (usize, usize),
    data: Vec<Vec<f32>>,
) -> Result<(LstmOutput, Gradients)> {
    let (h, dirs) = (cfg.hidden_size, cfg.num_directions());
    let sshape = [cfg.num_layers * dirs, b, h];
    let mut it = data.into_iter();
    let short = || LstmError::value("GPU readback", "fewer buffers than planned");
    let mut arr = |shape: [usize; 3]| -> Result<Array3<f32>> {
        let v = it.next().ok_or_else(short)?;
        Array3::from_shape_vec(shape, v)
            .map_err(|e| LstmError::shape("GPU readback", format!("{shape:?}"), e.to_string()))
    };
    let y = arr([t, b, dirs * h])?;
    let (h_n, c_n) = (arr(sshape)?, arr(sshape)?);
    let dx = arr([t, b, cfg.input_size])?;
    let (dh0, dc0) = (arr(sshape)?, arr(sshape)?);
    let mut layers = Vec::with_capacity(cfg.num_layers * dirs);
    for l in 0..cfg.num_layers {
        for _ in 0..dirs {
            let mut part = || it.next().ok_or_else(short);
            let parts = [part()?, part()?, part()?, part()?];
            let (i, bias, peep) = (cfg.layer_input_size(l), cfg.bias, rec_layout);
            layers.push(pack::layer_from_gpu(&parts, i, h, bias, peep, None));
        }
    }
    let out = LstmOutput {
        y: from_time_major(cfg, y),
        h_n,
        c_n,
    };
    let grads = Gradients {
        params: LstmWeights {
            config: cfg.clone(),
            layers,
        },
        dx: from_time_major(cfg, dx),
        dh0,
        dc0,
    };
    Ok((out, grads))
}

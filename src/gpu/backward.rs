//! Recording BPTT on the GPU: per layer (top first) and direction, one fused
//! `lstm_step_backward` dispatch per step plus a final one for `(dh_0, dc_0)`, then the
//! parameter gradients over all steps at once (`lstm_param_grads` and three GEMMs).
//! Also [`GpuLstm::forward_backward`], the GPU twin of `cpu::forward_train` + `cpu::backward`.

use ndarray::{Array3, ArrayView3};

use super::buffers::{new_storage, storage_init, uniform, IndexTable};
use super::context::GpuContext;
use super::forward::{RunInputs, TrainCache};
use super::kernels::lstm_param_grads::{self, GradParams};
use super::kernels::lstm_step_backward::{self, BackwardBuffers, BackwardParams};
use super::kernels::matmul::{matmul, MatmulParams};
use super::lstm::{upload_state, GpuLstm};
use super::pack;
use super::weights::{GpuWeights, LayerBuffers};
use crate::cpu::{Gradients, Upstream};
use crate::error::{LstmError, Result};
use crate::sequence::{
    check_inputs, from_time_major, lengths, to_time_major, ForwardOptions, LstmOutput,
};
use crate::weights::LstmWeights;

/// Gradients that flow out of the LSTM, time-major, on the GPU.
pub(crate) struct BackwardOutput {
    /// `[T, B, I]`.
    pub dx: wgpu::Buffer,
    /// `[L·D, B, H]`.
    pub dh0: wgpu::Buffer,
    pub dc0: wgpu::Buffer,
}

/// Upstream gradients on the GPU (absent = zero).
#[derive(Clone, Copy, Default)]
pub(crate) struct GpuUpstream<'a> {
    /// `[T, B, D·H]` time-major.
    pub dy: Option<&'a wgpu::Buffer>,
    /// `[L·D, B, H]`.
    pub dh_n: Option<&'a wgpu::Buffer>,
    pub dc_n: Option<&'a wgpu::Buffer>,
}

/// Per-call buffers of a backward pass.
struct Scratch {
    index: IndexTable,
    /// Per layer-direction `[2][2][B][H]`: (dh, dc) ping-pong halves.
    carries: Vec<wgpu::Buffer>,
    /// Per layer-direction `[T·B][H]` vec4.
    dz: Vec<wgpu::Buffer>,
    /// Per layer `[T, B, I_l]`: dx of layer l is the dy of layer l-1.
    dxs: Vec<wgpu::Buffer>,
}

/// Records the whole backward pass; parameter gradients are overwritten into `grads`.
pub(crate) fn record_backward(
    ctx: &GpuContext,
    w: &GpuWeights,
    encoder: &mut wgpu::CommandEncoder,
    cache: &TrainCache,
    up: GpuUpstream,
    grads: &[LayerBuffers],
) -> Result<BackwardOutput> {
    let cfg = &w.config;
    let (t_len, b, h, dirs) = (cache.t, cache.b, cfg.hidden_size, cfg.num_directions());
    let (rows, bh) = (t_len * b, b * h);
    let sbytes = 4 * bh as u64;
    let ld_count = cfg.num_layers * dirs;
    let sc = Scratch {
        index: lstm_step_backward::index_table(ctx, t_len)?,
        carries: (0..ld_count)
            .map(|_| new_storage(ctx, "carry", 4 * bh, false))
            .collect(),
        dz: (0..ld_count)
            .map(|_| new_storage(ctx, "dz", rows * 4 * h, false))
            .collect(),
        dxs: (0..cfg.num_layers)
            .map(|l| new_storage(ctx, "dx", rows * cfg.layer_input_size(l), false))
            .collect(),
    };
    for (ld, c) in sc.carries.iter().enumerate() {
        if let Some(dh) = up.dh_n {
            encoder.copy_buffer_to_buffer(dh, ld as u64 * sbytes, c, 0, sbytes);
        }
        if let Some(dc) = up.dc_n {
            encoder.copy_buffer_to_buffer(dc, ld as u64 * sbytes, c, sbytes, sbytes);
        }
    }
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("lstm backward"),
            timestamp_writes: None,
        });
        for l in (0..cfg.num_layers).rev() {
            let dy = if l + 1 == cfg.num_layers {
                up.dy
            } else {
                Some(&sc.dxs[l + 1])
            };
            for d in 0..dirs {
                record_layer_direction(
                    ctx,
                    w,
                    &mut pass,
                    cache,
                    &sc,
                    dy,
                    (l, d),
                    &grads[l * dirs + d],
                )?;
            }
        }
    }
    // After T steps and FINAL (T + 1 dispatches) the newest carry is in half (T + 1) % 2.
    let dh0 = new_storage(ctx, "dh0", ld_count * bh, false);
    let dc0 = new_storage(ctx, "dc0", ld_count * bh, false);
    let fin = ((t_len + 1) % 2) as u64 * 2 * sbytes;
    for (ld, c) in sc.carries.iter().enumerate() {
        encoder.copy_buffer_to_buffer(c, fin, &dh0, ld as u64 * sbytes, sbytes);
        encoder.copy_buffer_to_buffer(c, fin + sbytes, &dc0, ld as u64 * sbytes, sbytes);
    }
    let dx = sc
        .dxs
        .into_iter()
        .next()
        .ok_or_else(|| LstmError::Config("no layers".into()))?;
    Ok(BackwardOutput { dx, dh0, dc0 })
}

/// The steps of one layer-direction, then its parameter gradients and its part of dX.
#[allow(clippy::too_many_arguments)]
fn record_layer_direction(
    ctx: &GpuContext,
    w: &GpuWeights,
    pass: &mut wgpu::ComputePass,
    cache: &TrainCache,
    sc: &Scratch,
    dy: Option<&wgpu::Buffer>,
    (l, d): (usize, usize),
    grads: &LayerBuffers,
) -> Result<()> {
    let cfg = &w.config;
    let (t_len, b, h, dirs) = (cache.t, cache.b, cfg.hidden_size, cfg.num_directions());
    let (rows, kr) = (t_len * b, cfg.recurrent_width());
    let ld = l * dirs + d;
    let lw = &w.layers[ld];
    let params = BackwardParams {
        batch: b as u32,
        hidden: h as u32,
        k_rec: kr as u32,
        peephole: w.peephole_code(),
        dy_stride: (dirs * h) as u32,
        dy_offset: (d * h) as u32,
        has_dy: dy.is_some() as u32,
        _pad: 0,
    };
    let params = uniform(ctx, "backward params", &params);
    let bufs = BackwardBuffers {
        params: &params,
        w_rec: &lw.w_rec,
        peep: &lw.peep,
        gates: &cache.gates[ld],
        prev: &cache.prev[ld],
        lens: &cache.lens,
        dy: dy.unwrap_or(ctx.dummy()),
        dz: &sc.dz[ld],
        carry: &sc.carries[ld],
    };
    lstm_step_backward::record(ctx, pass, &sc.index, &bufs, (d, t_len, h, b))?;
    let gp = GradParams {
        rows: rows as u32,
        hidden: h as u32,
        peephole: w.peephole_code(),
        _pad: 0,
    };
    let (dz, gates, prev) = (&sc.dz[ld], &cache.gates[ld], &cache.prev[ld]);
    lstm_param_grads::record(ctx, pass, gp, dz, gates, prev, &grads.bias, &grads.peep)?;
    let width = cfg.layer_input_size(l);
    // dW_ih = dZᵀ·X,  dW_rec = dZᵀ·[H_prev; C_prev],  dX (+)= dZ·W_ih
    let input = &cache.layer_inputs[l];
    matmul(
        ctx,
        pass,
        MatmulParams::new(4 * h, width, rows).a_trans(),
        dz,
        input,
        None,
        &grads.w_ih,
    );
    let rec = MatmulParams::new(4 * h, kr, rows).a_trans().ldb(2 * h);
    matmul(ctx, pass, rec, dz, prev, None, &grads.w_rec);
    let dx = MatmulParams::new(rows, width, 4 * h);
    let dx = if d == 0 { dx } else { dx.accumulate() };
    matmul(ctx, pass, dx, dz, &lw.w_ih, None, &sc.dxs[l]);
    Ok(())
}

impl GpuLstm {
    /// Forward and backward on the GPU in one submit and one readback; the GPU twin of
    /// [`crate::cpu::forward_train`] + [`crate::cpu::backward()`], returning the same types.
    /// The sequence must fit one storage binding (training does not chunk).
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
        let xt = to_time_major(cfg, &x);
        let init = opts
            .initial
            .cloned()
            .unwrap_or_else(|| crate::sequence::zero_state(cfg, dims.b));
        let lens = lengths(dims, &opts);
        let ctx = &self.ctx;
        let std = |a: &Array3<f32>| a.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        let data = ctx.scoped("forward and backward", || {
            let x_buf = storage_init(ctx, "x", &std(&xt));
            let initial = upload_state(ctx, &init);
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let inputs = RunInputs {
                x_chunks: std::slice::from_ref(&x_buf),
                initial: &initial,
                lens: &lens,
                b: dims.b,
            };
            let run = self.record(&mut encoder, &plan, &inputs, true)?;
            let cache = run
                .cache
                .as_ref()
                .ok_or_else(|| LstmError::value("training cache", "missing"))?;
            let dy = up
                .dy
                .map(|a| storage_init(ctx, "dy", &std(&to_time_major(cfg, &a))));
            let dh_n = up
                .dh_n
                .map(|a| storage_init(ctx, "dh_n", &std(&a.to_owned())));
            let dc_n = up
                .dc_n
                .map(|a| storage_init(ctx, "dc_n", &std(&a.to_owned())));
            let grads = self.weights.zeros_like(ctx);
            let gup = GpuUpstream {
                dy: dy.as_ref(),
                dh_n: dh_n.as_ref(),
                dc_n: dc_n.as_ref(),
            };
            let out = record_backward(ctx, &self.weights, &mut encoder, cache, gup, &grads)?;
            let mut sources = vec![
                &run.y_chunks[0],
                &run.h_n,
                &run.c_n,
                &out.dx,
                &out.dh0,
                &out.dc0,
            ];
            for g in &grads {
                sources.extend([&g.w_ih, &g.bias, &g.w_rec, &g.peep]);
            }
            let sized: Vec<(&wgpu::Buffer, u64)> = sources.iter().map(|b| (*b, b.size())).collect();
            ctx.submit_and_read(encoder, &sized)
        })?;
        unpack_forward_backward(cfg, dims.t, dims.b, data)
    }
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
    t: usize,
    b: usize,
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
            let (i, bias, peep) = (cfg.layer_input_size(l), cfg.bias, cfg.peephole);
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

//! Recording BPTT on the GPU: per layer (top first) and direction, one fused
//! `lstm_step_backward` dispatch per step plus a final one for `(dh_0, dc_0)`, then the
//! parameter gradients over all steps at once (`lstm_param_grads` and three GEMMs).

use std::num::NonZeroU64;

use ndarray::{Array3, ArrayView3};
use wgpu::util::DeviceExt;

use super::kernels::{
    BackwardIndex, BackwardParams, GradParams, MatmulParams, BACKWARD_ROWS_TILE, BACKWARD_TILE,
};
use super::model::{storage_init, GpuLstm, GpuState, LayerBuffers};
use super::ops::{self, bind_group, uniform};
use super::pack;
use super::schedule::{new_storage, TrainCache};
use crate::cpu::{Gradients, Upstream};
use crate::error::{LstmError, Result};
use crate::sequence::{
    check_inputs, from_time_major, lengths, to_time_major, zero_state, ForwardOptions, LstmOutput,
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

/// Allocates gradient buffers shaped like the model's weights.
pub(crate) fn grad_buffers(model: &GpuLstm) -> Vec<LayerBuffers> {
    let ctx = &model.ctx;
    let g = |w: &wgpu::Buffer| new_storage(ctx, "grad", (w.size() / 4) as usize, false);
    model
        .layers
        .iter()
        .map(|l| LayerBuffers {
            w_ih: g(&l.w_ih),
            bias: g(&l.bias),
            w_rec: g(&l.w_rec),
            peep: g(&l.peep),
        })
        .collect()
}

/// Records the whole backward pass; parameter gradients are overwritten into `grads`.
pub(crate) fn record_backward(
    model: &GpuLstm,
    encoder: &mut wgpu::CommandEncoder,
    cache: &TrainCache,
    up: GpuUpstream,
    grads: &[LayerBuffers],
) -> Result<BackwardOutput> {
    let ctx = &model.ctx;
    let cfg = &model.config;
    let k = ctx.kernels()?;
    let (t_len, b, h, dirs) = (cache.t, cache.b, cfg.hidden_size, cfg.num_directions());
    let (rows, bh, kr) = (t_len * b, b * h, cfg.recurrent_width());
    let sbytes = 4 * bh as u64;

    // Step indices: for each direction, T steps then FINAL, each at an aligned offset.
    let align = (ctx.limits().min_uniform_buffer_offset_alignment as usize).max(16);
    let per_dir = t_len + 1;
    let mut bytes = vec![0u8; 2 * per_dir * align];
    for d in 0..2 {
        for s in 0..=t_len {
            let order = |s: usize| if d == 0 { t_len - 1 - s } else { s };
            let t = if s < t_len { order(s) } else { 0 };
            let mut bits = 0;
            if s % 2 == 1 {
                bits |= BackwardIndex::PARITY;
            }
            if s == 0 {
                bits |= BackwardIndex::FIRST;
            }
            if s == t_len {
                bits |= BackwardIndex::FINAL;
            }
            let t_prev = if s > 0 { order(s - 1) } else { 0 };
            let e = BackwardIndex {
                t_global: t as u32,
                t_local: t as u32,
                t_prev: t_prev as u32,
                bits,
            };
            let at = (d * per_dir + s) * align;
            bytes[at..at + 16].copy_from_slice(bytemuck::bytes_of(&e));
        }
    }
    let index = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("backward index"),
            contents: &bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
    let index_binding = wgpu::BufferBinding {
        buffer: &index,
        offset: 0,
        size: NonZeroU64::new(16),
    };

    let ld_count = cfg.num_layers * dirs;
    let carries: Vec<wgpu::Buffer> = (0..ld_count)
        .map(|_| new_storage(ctx, "carry", 4 * bh, false))
        .collect();
    for (ld, c) in carries.iter().enumerate() {
        if let Some(dh) = up.dh_n {
            encoder.copy_buffer_to_buffer(dh, ld as u64 * sbytes, c, 0, sbytes);
        }
        if let Some(dc) = up.dc_n {
            encoder.copy_buffer_to_buffer(dc, ld as u64 * sbytes, c, sbytes, sbytes);
        }
    }
    let dz: Vec<wgpu::Buffer> = (0..ld_count)
        .map(|_| new_storage(ctx, "dz", rows * 4 * h, false))
        .collect();
    // dx of layer l is the dy of layer l-1.
    let dxs: Vec<wgpu::Buffer> = (0..cfg.num_layers)
        .map(|l| new_storage(ctx, "dx", rows * cfg.layer_input_size(l), false))
        .collect();
    let dh0 = new_storage(ctx, "dh0", ld_count * bh, false);
    let dc0 = new_storage(ctx, "dc0", ld_count * bh, false);
    // Software adapters get the barrier-free form (see lstm_step_backward.wgsl).
    let (backward_pipeline, tile) = if ctx.software_kernels() {
        (&k.step_backward_rows, BACKWARD_ROWS_TILE)
    } else {
        (&k.step_backward, BACKWARD_TILE)
    };
    let grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("lstm backward"),
            timestamp_writes: None,
        });
        for l in (0..cfg.num_layers).rev() {
            let dy = if l + 1 == cfg.num_layers {
                up.dy
            } else {
                Some(&dxs[l + 1])
            };
            for d in 0..dirs {
                let ld = l * dirs + d;
                let lw = &model.layers[ld];
                let params = BackwardParams {
                    batch: b as u32,
                    hidden: h as u32,
                    k_rec: kr as u32,
                    peephole: model.peephole_code(),
                    dy_stride: (dirs * h) as u32,
                    dy_offset: (d * h) as u32,
                    has_dy: dy.is_some() as u32,
                    _pad: 0,
                };
                let pbuf = uniform(ctx, "backward params", &params);
                let bg = bind_group(
                    ctx,
                    &k.backward_layout,
                    &[
                        pbuf.as_entire_binding(),
                        wgpu::BindingResource::Buffer(index_binding.clone()),
                        lw.w_rec.as_entire_binding(),
                        lw.peep.as_entire_binding(),
                        cache.gates[ld].as_entire_binding(),
                        cache.prev[ld].as_entire_binding(),
                        cache.lens.as_entire_binding(),
                        dy.unwrap_or(ctx.dummy()).as_entire_binding(),
                        dz[ld].as_entire_binding(),
                        carries[ld].as_entire_binding(),
                    ],
                );
                pass.set_pipeline(backward_pipeline);
                for s in 0..=t_len {
                    pass.set_bind_group(0, &bg, &[((d * per_dir + s) * align) as u32]);
                    pass.dispatch_workgroups(grid.0, grid.1, 1);
                }

                let gp = GradParams {
                    rows: rows as u32,
                    hidden: h as u32,
                    peephole: model.peephole_code(),
                    _pad: 0,
                };
                let gbuf = uniform(ctx, "grad params", &gp);
                let gbg = bind_group(
                    ctx,
                    &k.grads_layout,
                    &[
                        gbuf.as_entire_binding(),
                        dz[ld].as_entire_binding(),
                        cache.gates[ld].as_entire_binding(),
                        cache.prev[ld].as_entire_binding(),
                        grads[ld].bias.as_entire_binding(),
                        grads[ld].peep.as_entire_binding(),
                    ],
                );
                pass.set_pipeline(&k.param_grads);
                pass.set_bind_group(0, &gbg, &[]);
                pass.dispatch_workgroups((h as u32).div_ceil(64), 1, 1);

                let input = &cache.layer_inputs[l];
                let width = cfg.layer_input_size(l);
                // dW_ih = dZᵀ·X,  dW_rec = dZᵀ·[H_prev; C_prev],  dX (+)= dZ·W_ih
                ops::matmul(
                    ctx,
                    &mut pass,
                    MatmulParams::new(4 * h, width, rows).a_trans(),
                    &dz[ld],
                    input,
                    None,
                    &grads[ld].w_ih,
                );
                ops::matmul(
                    ctx,
                    &mut pass,
                    MatmulParams::new(4 * h, kr, rows).a_trans().ldb(2 * h),
                    &dz[ld],
                    &cache.prev[ld],
                    None,
                    &grads[ld].w_rec,
                );
                let dx = MatmulParams::new(rows, width, 4 * h);
                let dx = if d == 0 { dx } else { dx.accumulate() };
                ops::matmul(ctx, &mut pass, dx, &dz[ld], &lw.w_ih, None, &dxs[l]);
            }
        }
    }
    // After T steps and FINAL (T + 1 dispatches) the newest carry is in half (T + 1) % 2.
    let fin = ((t_len + 1) % 2) as u64 * 2 * sbytes;
    for (ld, c) in carries.iter().enumerate() {
        encoder.copy_buffer_to_buffer(c, fin, &dh0, ld as u64 * sbytes, sbytes);
        encoder.copy_buffer_to_buffer(c, fin + sbytes, &dc0, ld as u64 * sbytes, sbytes);
    }
    let dx = dxs.into_iter().next().expect("at least one layer");
    Ok(BackwardOutput { dx, dh0, dc0 })
}

impl GpuLstm {
    /// Forward and backward on the GPU in one submit and one readback; the GPU twin of
    /// [`crate::cpu::forward_train`] + [`crate::cpu::backward`], returning the same types.
    /// The sequence must fit one storage binding (training does not chunk).
    pub fn forward_backward(
        &self,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        up: Upstream,
    ) -> Result<(LstmOutput, Gradients)> {
        let cfg = &self.config;
        let dims = check_inputs(cfg, &x, &opts)?;
        let (t, b, h, dirs) = (dims.t, dims.b, cfg.hidden_size, cfg.num_directions());
        let ld_count = cfg.num_layers * dirs;
        let yshape = if cfg.batch_first {
            [b, t, dirs * h]
        } else {
            [t, b, dirs * h]
        };
        let sshape = [ld_count, b, h];
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
        let plan = self.plan(t, b)?;
        let xt = to_time_major(cfg, &x);
        let init = opts.initial.cloned().unwrap_or_else(|| zero_state(cfg, b));
        let lens = lengths(dims, &opts);
        let ctx = &self.ctx;
        let std = |a: &Array3<f32>| a.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        let data = ctx.scoped("forward and backward", || {
            let x_buf = storage_init(ctx, "x", &std(&xt));
            let initial = GpuState {
                h: storage_init(ctx, "h_0", &std(&init.h)),
                c: storage_init(ctx, "c_0", &std(&init.c)),
            };
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let run = self.record(
                &mut encoder,
                &plan,
                b,
                std::slice::from_ref(&x_buf),
                &initial,
                &lens,
                true,
            )?;
            let cache = run.cache.as_ref().expect("train = true keeps a cache");
            let dy = up
                .dy
                .map(|a| storage_init(ctx, "dy", &std(&to_time_major(cfg, &a))));
            let dh_n = up
                .dh_n
                .map(|a| storage_init(ctx, "dh_n", &std(&a.to_owned())));
            let dc_n = up
                .dc_n
                .map(|a| storage_init(ctx, "dc_n", &std(&a.to_owned())));
            let grads = grad_buffers(self);
            let gup = GpuUpstream {
                dy: dy.as_ref(),
                dh_n: dh_n.as_ref(),
                dc_n: dc_n.as_ref(),
            };
            let out = record_backward(self, &mut encoder, cache, gup, &grads)?;
            let mut sources: Vec<&wgpu::Buffer> = vec![
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
        let mut it = data.into_iter();
        let mut arr = |shape: [usize; 3]| {
            Array3::from_shape_vec(shape, it.next().expect("planned readback"))
                .expect("planned size")
        };
        let y = arr([t, b, dirs * h]);
        let (h_n, c_n) = (arr(sshape), arr(sshape));
        let dx = arr([t, b, cfg.input_size]);
        let (dh0, dc0) = (arr(sshape), arr(sshape));
        let mut layers = Vec::with_capacity(ld_count);
        for l in 0..cfg.num_layers {
            for _ in 0..dirs {
                let parts = [it.next(), it.next(), it.next(), it.next()]
                    .map(|p| p.expect("planned readback"));
                layers.push(pack::layer_from_gpu(
                    &parts,
                    cfg.layer_input_size(l),
                    h,
                    cfg.bias,
                    cfg.peephole,
                    None,
                ));
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
}

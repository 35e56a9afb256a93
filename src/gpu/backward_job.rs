//! BPTT of one `(T, B)` shape, built once: per layer (top first) and direction, one
//! fused `lstm_step_backward` dispatch per step plus a final one for `(dh_0, dc_0)`, then
//! the parameter gradients over all steps at once (`lstm_param_grads` and three GEMMs).
//! Recording it again creates nothing.

use super::buffers::{new_storage, uniform, IndexTable};
use super::context::GpuContext;
use super::forward::TrainCache;
use super::kernels::lstm_param_grads::{self, GradParams};
use super::kernels::lstm_step_backward::{self, BackwardBuffers, BackwardParams};
use super::kernels::matmul::{self, MatmulParams};
use super::kernels::Dispatch;
use super::weights::{GpuWeights, LayerBuffers};
use crate::error::{LstmError, Result};

/// Upstream gradients on the GPU (absent = zero).
#[derive(Clone, Copy, Default)]
pub(crate) struct GpuUpstream<'a> {
    /// `[T, B, D·H]` time-major.
    pub dy: Option<&'a wgpu::Buffer>,
    /// `[L·D, B, H]`.
    pub dh_n: Option<&'a wgpu::Buffer>,
    pub dc_n: Option<&'a wgpu::Buffer>,
}

/// One layer-direction's bound dispatches, in recording order.
struct LayerDirectionWork {
    d: usize,
    steps: Dispatch,
    param_grads: Dispatch,
    /// dW_ih = dZᵀ·X,  dW_rec = dZᵀ·[H_prev; C_prev],  dX (+)= dZ·W_ih
    products: [Dispatch; 3],
}

/// Everything a backward pass of one shape needs on the GPU.
pub(crate) struct BackwardJob {
    t: usize,
    /// `4·B·H` bytes: one `[B][H]` block of a carry.
    block: u64,
    index: IndexTable,
    /// Per layer-direction `[2][2][B][H]`: (dh, dc) ping-pong halves.
    carries: Vec<wgpu::Buffer>,
    /// Per layer `[T, B, I_l]`: dx of layer l is the dy of layer l-1.
    pub dxs: Vec<wgpu::Buffer>,
    /// `[L·D, B, H]` each.
    pub dh0: wgpu::Buffer,
    pub dc0: wgpu::Buffer,
    dh_n: Option<wgpu::Buffer>,
    dc_n: Option<wgpu::Buffer>,
    /// Top layer first, as recorded.
    work: Vec<LayerDirectionWork>,
}

impl BackwardJob {
    /// Binds the backward of the forward that left `cache`; parameter gradients are
    /// written (not added) into `grads` by every run.
    pub fn build(
        ctx: &GpuContext,
        w: &GpuWeights,
        cache: &TrainCache,
        up: GpuUpstream,
        grads: &[LayerBuffers],
    ) -> Result<BackwardJob> {
        let cfg = &w.config;
        let (t, b, h) = (cache.t, cache.b, cfg.hidden_size);
        let (rows, ld_count) = (t * b, cfg.num_layers * cfg.num_directions());
        let mut job = BackwardJob {
            t,
            block: 4 * (b * h) as u64,
            index: lstm_step_backward::index_table(ctx, t)?,
            carries: (0..ld_count)
                .map(|_| new_storage(ctx, "carry", 4 * b * h, false))
                .collect(),
            dxs: (0..cfg.num_layers)
                .map(|l| new_storage(ctx, "dx", rows * cfg.layer_input_size(l), false))
                .collect(),
            dh0: new_storage(ctx, "dh0", ld_count * b * h, false),
            dc0: new_storage(ctx, "dc0", ld_count * b * h, false),
            dh_n: up.dh_n.cloned(),
            dc_n: up.dc_n.cloned(),
            work: Vec::new(),
        };
        for l in (0..cfg.num_layers).rev() {
            let dy = if l + 1 == cfg.num_layers {
                up.dy.cloned()
            } else {
                Some(job.dxs[l + 1].clone())
            };
            for d in 0..cfg.num_directions() {
                let at = (l, d);
                let work = job.bind_layer_direction(ctx, w, cache, dy.as_ref(), at, grads)?;
                job.work.push(work);
            }
        }
        Ok(job)
    }

    /// The steps of one layer-direction, then its parameter gradients and its part of dX.
    fn bind_layer_direction(
        &self,
        ctx: &GpuContext,
        w: &GpuWeights,
        cache: &TrainCache,
        dy: Option<&wgpu::Buffer>,
        (l, d): (usize, usize),
        grads: &[LayerBuffers],
    ) -> Result<LayerDirectionWork> {
        let cfg = &w.config;
        let (b, h, dirs) = (cache.b, cfg.hidden_size, cfg.num_directions());
        let (rows, kr, ld) = (self.t * b, cfg.recurrent_width(), l * dirs + d);
        let (lw, g) = (&w.layers[ld], &grads[ld]);
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
        let dz = new_storage(ctx, "dz", rows * 4 * h, false);
        let (gates, prev) = (&cache.gates[ld], &cache.prev[ld]);
        let bufs = BackwardBuffers {
            params: &params,
            w_rec: &lw.w_rec,
            peep: &lw.peep,
            gates,
            prev,
            lens: &cache.lens,
            dy: dy.unwrap_or(ctx.dummy()),
            dz: &dz,
            carry: &self.carries[ld],
        };
        let gp = GradParams {
            rows: rows as u32,
            hidden: h as u32,
            peephole: w.peephole_code(),
            _pad: 0,
        };
        let width = cfg.layer_input_size(l);
        let input = &cache.layer_inputs[l];
        let dx = MatmulParams::new(rows, width, 4 * h);
        let dx = if d == 0 { dx } else { dx.accumulate() };
        let rec = MatmulParams::new(4 * h, kr, rows).a_trans().ldb(2 * h);
        let d_ih = MatmulParams::new(4 * h, width, rows).a_trans();
        Ok(LayerDirectionWork {
            d,
            steps: lstm_step_backward::prepare(ctx, &self.index, &bufs, (h, b))?,
            param_grads: lstm_param_grads::prepare(ctx, gp, &dz, gates, prev, &g.bias, &g.peep)?,
            products: [
                matmul::prepare(ctx, d_ih, &dz, input, None, &g.w_ih),
                matmul::prepare(ctx, rec, &dz, prev, None, &g.w_rec),
                matmul::prepare(ctx, dx, &dz, &lw.w_ih, None, &self.dxs[l]),
            ],
        })
    }

    /// Records one run: the carries start from `(dh_n, dc_n)` (zero where absent).
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let block = self.block;
        for (ld, c) in self.carries.iter().enumerate() {
            // A reused job's carries hold the last run's values: start from zero.
            encoder.clear_buffer(c, 0, None);
            if let Some(dh) = &self.dh_n {
                encoder.copy_buffer_to_buffer(dh, ld as u64 * block, c, 0, block);
            }
            if let Some(dc) = &self.dc_n {
                encoder.copy_buffer_to_buffer(dc, ld as u64 * block, c, block, block);
            }
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("lstm backward"),
                timestamp_writes: None,
            });
            for work in &self.work {
                lstm_step_backward::record_steps(
                    &mut pass,
                    &work.steps,
                    &self.index,
                    (work.d, self.t),
                );
                work.param_grads.record(&mut pass);
                for p in &work.products {
                    p.record(&mut pass);
                }
            }
        }
        // After T steps and FINAL (T + 1 dispatches) the newest carry is in half (T + 1) % 2.
        let fin = ((self.t + 1) % 2) as u64 * 2 * block;
        for (ld, c) in self.carries.iter().enumerate() {
            encoder.copy_buffer_to_buffer(c, fin, &self.dh0, ld as u64 * block, block);
            encoder.copy_buffer_to_buffer(c, fin + block, &self.dc0, ld as u64 * block, block);
        }
    }

    /// `∂L/∂x`, time-major `[T, B, I]`.
    pub fn dx(&self) -> Result<&wgpu::Buffer> {
        self.dxs
            .first()
            .ok_or_else(|| LstmError::Config("no layers".into()))
    }
}

//! Recording optimizer steps: `sum_squares` per tensor (for global-norm clipping),
//! then `update` per tensor. Moments live on the GPU next to the parameters.

use super::context::GpuContext;
use super::kernels::OptParams;
use super::ops::{bind_group, uniform};
use super::schedule::new_storage;
use crate::train::{Optimizer, TrainConfig};

pub(crate) struct GpuOptimizer {
    m: Vec<wgpu::Buffer>,
    v: Vec<wgpu::Buffer>,
    lens: Vec<usize>,
    norms: wgpu::Buffer,
}

impl GpuOptimizer {
    /// Zeroed moments for tensors of `lens` floats.
    pub fn new(ctx: &GpuContext, lens: &[usize]) -> Self {
        let zeros = |n: usize| new_storage(ctx, "moment", n, false);
        GpuOptimizer {
            m: lens.iter().map(|&n| zeros(n)).collect(),
            v: lens.iter().map(|&n| zeros(n)).collect(),
            lens: lens.to_vec(),
            norms: zeros(lens.len().max(4)),
        }
    }

    /// Records step `t` (from 1) for `params[i] -= f(grads[i])`.
    pub fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &[&wgpu::Buffer],
        grads: &[&wgpu::Buffer],
        cfg: &TrainConfig,
        t: u64,
    ) -> crate::Result<()> {
        let k = ctx.kernels()?;
        let (kind, beta1, beta2, eps) = match cfg.optimizer {
            Optimizer::Adam { beta1, beta2, eps } => (0, beta1, beta2, eps),
            Optimizer::Sgd { momentum } => (1, momentum, 0.0, 0.0),
        };
        let max_norm = cfg.clip_norm.unwrap_or(0.0);
        let groups: Vec<(OptParams, wgpu::BindGroup)> = (0..params.len())
            .map(|i| {
                let p = OptParams {
                    len: self.lens[i] as u32,
                    slot: i as u32,
                    slots: self.lens.len() as u32,
                    kind,
                    lr: cfg.lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay: cfg.weight_decay,
                    max_norm,
                    bias1: 1.0 - beta1.powi(t as i32),
                    bias2: 1.0 - beta2.powi(t as i32),
                    first: (t == 1) as u32,
                    _pad: [0; 3],
                };
                let ub = uniform(ctx, "optimizer params", &p);
                let bg = bind_group(
                    ctx,
                    &k.opt_layout,
                    &[
                        ub.as_entire_binding(),
                        grads[i].as_entire_binding(),
                        self.norms.as_entire_binding(),
                        params[i].as_entire_binding(),
                        self.m[i].as_entire_binding(),
                        self.v[i].as_entire_binding(),
                    ],
                );
                (p, bg)
            })
            .collect();
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("optimizer"),
            timestamp_writes: None,
        });
        if max_norm > 0.0 {
            pass.set_pipeline(&k.sum_squares);
            for (_, bg) in &groups {
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        pass.set_pipeline(&k.update);
        for (p, bg) in &groups {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(p.len.div_ceil(256), 1, 1);
        }
        Ok(())
    }
}

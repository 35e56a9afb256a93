//! `shaders/optimizer_update.wgsl`: global-norm clipping (`sum_squares` per tensor),
//! then an Adam or SGD `update` per tensor. Moments live on the GPU next to the
//! parameters. CPU twin: [`crate::cpu::optimizer_update`].

use bytemuck::{Pod, Zeroable};

use crate::cpu::UpdateRule;
use crate::error::Result;
use crate::gpu::buffers::{bind_group, new_storage, uniform};
use crate::gpu::context::GpuContext;

/// Mirrors `OptParams` in `shaders/optimizer_update.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct OptParams {
    pub len: u32,
    pub slot: u32,
    pub slots: u32,
    pub kind: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub max_norm: f32,
    pub bias1: f32,
    pub bias2: f32,
    pub first: u32,
    pub _pad: [u32; 3],
}

/// The moments of every trained tensor, and the per-tensor squared norms.
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

    /// Records step `rule.t` (from 1) for `params[i] -= f(grads[i])`.
    pub fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &[&wgpu::Buffer],
        grads: &[&wgpu::Buffer],
        rule: &UpdateRule,
    ) -> Result<()> {
        let k = ctx.kernels()?;
        let t = rule.t;
        let (beta1, beta2, max_norm) = (rule.beta1, rule.beta2, rule.max_norm);
        let groups: Vec<(OptParams, wgpu::BindGroup)> = (0..params.len())
            .map(|i| {
                let p = OptParams {
                    len: self.lens[i] as u32,
                    slot: i as u32,
                    slots: self.lens.len() as u32,
                    kind: if rule.adam { 0 } else { 1 },
                    lr: rule.lr,
                    beta1,
                    beta2,
                    eps: rule.eps,
                    weight_decay: rule.weight_decay,
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

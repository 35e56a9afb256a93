//! `shaders/optimizer_update.wgsl`: global-norm clipping (`sum_squares` per tensor),
//! then an Adam or SGD `update` per tensor. Moments live on the GPU next to the
//! parameters. CPU twin: [`crate::cpu::optimizer_update()`].

use bytemuck::{Pod, Zeroable};

use super::lstm_step::check_fits;
use crate::cpu::UpdateRule;
use crate::error::{LstmError, Result};
use crate::gpu::buffers::{bind_group, new_storage, storage_init, uniform};
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

    /// The first and second moments of every tensor, in the order of `lens`.
    pub fn moments(&self) -> (&[wgpu::Buffer], &[wgpu::Buffer]) {
        (&self.m, &self.v)
    }

    /// Records step `rule.t` (from 1) for `params[i] -= f(grads[i])`, bound for this call.
    pub fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &[&wgpu::Buffer],
        grads: &[&wgpu::Buffer],
        rule: &UpdateRule,
    ) -> Result<()> {
        self.bind(ctx, params, grads)?.record(ctx, encoder, rule);
        Ok(())
    }

    /// The dispatches of every tensor, bound once; each run writes its step's settings.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        params: &[&wgpu::Buffer],
        grads: &[&wgpu::Buffer],
    ) -> Result<BoundOptimizer> {
        let k = ctx.kernels()?;
        let uniforms: Vec<wgpu::Buffer> = (0..params.len())
            .map(|_| uniform(ctx, "optimizer params", &OptParams::zeroed()))
            .collect();
        let groups = (0..params.len())
            .map(|i| {
                let resources = [
                    uniforms[i].as_entire_binding(),
                    grads[i].as_entire_binding(),
                    self.norms.as_entire_binding(),
                    params[i].as_entire_binding(),
                    self.m[i].as_entire_binding(),
                    self.v[i].as_entire_binding(),
                ];
                bind_group(ctx, &k.opt_layout, &resources)
            })
            .collect();
        Ok(BoundOptimizer {
            uniforms,
            groups,
            lens: self.lens.clone(),
            sum_squares: k.sum_squares.clone(),
            update: k.update.clone(),
        })
    }
}

/// An optimizer step over fixed tensors, bound once.
pub(crate) struct BoundOptimizer {
    uniforms: Vec<wgpu::Buffer>,
    groups: Vec<wgpu::BindGroup>,
    lens: Vec<usize>,
    sum_squares: wgpu::ComputePipeline,
    update: wgpu::ComputePipeline,
}

impl BoundOptimizer {
    /// Writes step `rule.t`'s settings (they land before the next submit) and records it.
    pub fn record(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, rule: &UpdateRule) {
        for (i, u) in self.uniforms.iter().enumerate() {
            let p = opt_params(rule, i, self.lens[i], self.lens.len());
            ctx.queue.write_buffer(u, 0, bytemuck::bytes_of(&p));
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("optimizer"),
            timestamp_writes: None,
        });
        if rule.max_norm > 0.0 {
            pass.set_pipeline(&self.sum_squares);
            for bg in &self.groups {
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        pass.set_pipeline(&self.update);
        for (bg, &len) in self.groups.iter().zip(&self.lens) {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups((len as u32).div_ceil(256), 1, 1);
        }
    }
}

/// The uniform of tensor `slot` (of `slots`, `len` floats) at step `rule.t`.
fn opt_params(rule: &UpdateRule, slot: usize, len: usize, slots: usize) -> OptParams {
    let t = rule.t;
    OptParams {
        len: len as u32,
        slot: slot as u32,
        slots: slots as u32,
        kind: if rule.adam { 0 } else { 1 },
        lr: rule.lr,
        beta1: rule.beta1,
        beta2: rule.beta2,
        eps: rule.eps,
        weight_decay: rule.weight_decay,
        max_norm: rule.max_norm,
        bias1: 1.0 - rule.beta1.powi(t as i32),
        bias2: 1.0 - rule.beta2.powi(t as i32),
        first: (t == 1) as u32,
        _pad: [0; 3],
    }
}

impl GpuOptimizer {
    /// Moments uploaded from the host (`m`, `v` one vector per tensor); the squared-norm
    /// slots NaN-filled when `poison`, so a slot `sum_squares` misses poisons the clip.
    fn from_host(ctx: &GpuContext, m: &[Vec<f32>], v: &[Vec<f32>], poison: bool) -> Self {
        let up = |label, xs: &[Vec<f32>]| -> Vec<wgpu::Buffer> {
            xs.iter().map(|x| storage_init(ctx, label, x)).collect()
        };
        GpuOptimizer {
            m: up("moment m", m),
            v: up("moment v", v),
            lens: m.iter().map(Vec::len).collect(),
            norms: new_storage(ctx, "norms", m.len().max(4), poison),
        }
    }
}

/// The single-kernel entry point of `optimizer_update.wgsl`, used by
/// `tests/kernels.rs` and usable on its own: the kernel's dispatch sequence for
/// one step over a list of tensors (`sum_squares` per tensor when clipping, then `update`
/// per tensor), with the signature of its twin [`crate::cpu::optimizer_update()`]: `params`,
/// `m` and `v` are updated in place. With `poison` the per-tensor squared norms start as NaN.
pub fn run(
    ctx: &GpuContext,
    params: &mut [&mut [f32]],
    grads: &[&[f32]],
    m: &mut [Vec<f32>],
    v: &mut [Vec<f32>],
    rule: &UpdateRule,
    poison: bool,
) -> Result<()> {
    let lens: Vec<usize> = params.iter().map(|p| p.len()).collect();
    let same = |other: Vec<usize>| other == lens;
    if lens.is_empty()
        || lens.contains(&0)
        || !(same(grads.iter().map(|g| g.len()).collect())
            && same(m.iter().map(Vec::len).collect())
            && same(v.iter().map(Vec::len).collect()))
    {
        return Err(LstmError::shape(
            "optimizer_update params / grads / m / v",
            format!("one or more non-empty tensors of the same sizes in each: {lens:?}"),
            "lists of other lengths or sizes",
        ));
    }
    let longest = lens.iter().copied().max().unwrap_or(1);
    let grid = ((longest as u32).div_ceil(256), 1);
    check_fits(ctx, "optimizer_update", &[longest], grid)?;
    let data = ctx.scoped("optimizer_update", || {
        let opt = GpuOptimizer::from_host(ctx, m, v, poison);
        let pb: Vec<wgpu::Buffer> = params
            .iter()
            .map(|p| storage_init(ctx, "param", p))
            .collect();
        let gb: Vec<wgpu::Buffer> = grads.iter().map(|g| storage_init(ctx, "grad", g)).collect();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let (pr, gr): (Vec<_>, Vec<_>) = (pb.iter().collect(), gb.iter().collect());
        opt.record(ctx, &mut encoder, &pr, &gr, rule)?;
        let sources: Vec<(&wgpu::Buffer, u64)> = pb
            .iter()
            .chain(&opt.m)
            .chain(&opt.v)
            .map(|b| (b, b.size()))
            .collect();
        ctx.submit_and_read(encoder, &sources)
    })?;
    let n = lens.len();
    if data.len() != 3 * n {
        return Err(LstmError::value(
            "optimizer_update readback",
            "buffers missing",
        ));
    }
    for (i, got) in data.into_iter().enumerate() {
        match i / n {
            0 => params[i].copy_from_slice(&got),
            1 => m[i - n] = got,
            _ => v[i - 2 * n] = got,
        }
    }
    Ok(())
}

//! One GPU classifier step of a `(T, B)` shape, built once: the LSTM forward (with the
//! gate cache when training), the Dense head and the loss, the head's gradients, BPTT
//! and the optimizer update, every buffer, uniform and bind group made at build time.
//! A run writes the batch (`x`, lengths, labels, row weights, the loss scale, the
//! optimizer's step) and records: a repeated training step creates nothing.

use super::model::ClassifierParams;
use crate::cpu::UpdateRule;
use crate::error::{LstmError, Result};
use crate::gpu::kernels::matmul::{self, MatmulParams};
use crate::gpu::kernels::optimizer_update::{BoundOptimizer, GpuOptimizer};
use crate::gpu::kernels::softmax_xent::{self, XentBuffers, XentParams};
use crate::gpu::kernels::Dispatch;
use crate::gpu::{
    new_storage, storage_init, storage_u32, uniform, BackwardJob, ForwardJob, GpuContext, GpuLstm,
    GpuUpstream, LayerBuffers, RunInputs, Start,
};
use crate::train::optimizer::Target;

/// What a job binds of the classifier it serves.
pub(super) struct JobModel<'a> {
    pub lstm: &'a GpuLstm,
    /// Dense `(weight, bias)` and their gradients `(d weight, d bias)`.
    pub dense: (&'a wgpu::Buffer, &'a wgpu::Buffer),
    pub dense_grads: (&'a wgpu::Buffer, &'a wgpu::Buffer),
    pub grads: &'a [LayerBuffers],
    /// Every trained tensor with its gradient, in the optimizer's order.
    pub slots: Vec<(&'a wgpu::Buffer, &'a wgpu::Buffer)>,
    pub opt: &'a GpuOptimizer,
    /// `[Σ loss·w, Σ correct]` running over an epoch.
    pub running: &'a wgpu::Buffer,
    pub target: Target,
}

/// Shape of a call: time steps, batch, hidden, directions, classes, top layer's first index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sizes {
    pub t: usize,
    pub b: usize,
    pub h: usize,
    pub d: usize,
    pub c: usize,
    pub top: usize,
}

/// The head's buffers for `rows` feature rows.
struct Head {
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    stats: wgpu::Buffer,
    ones: wgpu::Buffer,
    /// Gradient reaching the LSTM: `dh_n` (last step) or `dy` (every step).
    dh_n: wgpu::Buffer,
    dy: wgpu::Buffer,
    labels: wgpu::Buffer,
    weights: wgpu::Buffer,
    xent_params: wgpu::Buffer,
    /// `[Σ loss·w, Σ correct]` of this run.
    totals: wgpu::Buffer,
    rows: usize,
}

/// The training part of a job: backward and the optimizer, bound.
struct Update {
    backward: BackwardJob,
    optimizer: BoundOptimizer,
}

pub(super) struct ClassifierJob {
    pub z: Sizes,
    pub train: bool,
    /// Time-major `[Tc, B, I]` per chunk of the forward's plan.
    x: Vec<wgpu::Buffer>,
    forward: ForwardJob,
    head: Head,
    logits: Vec<Dispatch>,
    loss: Vec<Dispatch>,
    head_grads: Vec<Dispatch>,
    update: Option<Update>,
}

/// What a recorded run does after the forward and the loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Pass {
    /// Nothing more (logits, evaluation).
    Infer,
    /// Backward and the optimizer step (`train_step`).
    Train,
    /// Backward only, the loss scaled by `1/denominator` (`gradients`).
    Gradients(f32),
}

/// What `apply_gradients` keeps between steps.
pub(super) struct SplitStep {
    /// Host-layout tensors that flat gradients are unpacked into before the upload.
    pub template: ClassifierParams,
    /// The optimizer over (parameters, gradient buffers), bound once.
    pub optimizer: BoundOptimizer,
}

/// The batch of one run, host side.
pub(super) struct RunData<'a> {
    /// Time-major `[T, B, I]`.
    pub x: &'a [f32],
    pub lens: &'a [usize],
    /// Per row: label and weight (absent: logits only).
    pub labels: Option<(&'a [u32], &'a [f32])>,
    /// Record the backward (training jobs).
    pub backward: bool,
    /// The optimizer's step settings (training jobs; absent: gradients only).
    pub rule: Option<UpdateRule>,
    /// The loss scale (absent: 1 / the batch's row count).
    pub scale: Option<f32>,
    /// A GRU's fix-ups around the update (`gpu_gru.rs`).
    pub gru: Option<&'a super::gpu_gru::GruParts>,
}

impl ClassifierJob {
    pub fn build(m: &JobModel, z: Sizes, train: bool) -> Result<ClassifierJob> {
        let (ctx, cfg) = (m.lstm.context(), m.lstm.config());
        // A per-step head reads the whole output sequence: one chunk, as long as a
        // binding allows. A last-step one trains in chunks.
        let plan = match m.target {
            Target::EveryStep => m.lstm.plan_whole(z.t, z.b)?,
            Target::LastStep => m.lstm.plan(z.t, z.b)?,
        };
        if plan.count > 1 && m.target == Target::EveryStep {
            return Err(LstmError::DeviceLimit(format!(
                "a per-step classifier needs T={} B={} in one storage binding (a last-step one trains in chunks)",
                z.t, z.b
            )));
        }
        let x: Vec<wgpu::Buffer> = plan
            .ranges()
            .map(|r| new_storage(ctx, "x", r.len() * z.b * cfg.input_size, false))
            .collect();
        let inputs = RunInputs {
            x_chunks: &x,
            initial: Start::Zero, // every sequence starts from a zero state
            lens: &[],
            b: z.b,
        };
        let forward = ForwardJob::build(
            ctx,
            &m.lstm.weights,
            plan,
            &inputs,
            &m.lstm.record_options(z.b, train),
        )?;
        let head = head_buffers(m, z, cfg.num_layers);
        let features = (&forward.h_n, &forward.y_chunks()[0]);
        let mut job = ClassifierJob {
            logits: logits_dispatches(m, z, &head, features),
            loss: loss_dispatches(m, &head)?,
            head_grads: if train {
                head_grad_dispatches(m, z, &head, features)
            } else {
                Vec::new()
            },
            update: None,
            z,
            train,
            x,
            forward,
            head,
        };
        if train {
            job.update = Some(job.bind_update(m)?);
        }
        Ok(job)
    }

    fn bind_update(&self, m: &JobModel) -> Result<Update> {
        let ctx = m.lstm.context();
        let cache = self
            .forward
            .train_cache(&self.x)
            .ok_or_else(|| LstmError::value("training cache", "missing"))?;
        let up = match m.target {
            Target::LastStep => GpuUpstream {
                dy: None,
                dh_n: Some(&self.head.dh_n),
                dc_n: None,
            },
            Target::EveryStep => GpuUpstream {
                dy: Some(std::slice::from_ref(&self.head.dy)),
                dh_n: None,
                dc_n: None,
            },
        };
        let backward = BackwardJob::build(ctx, &m.lstm.weights, &cache, up, m.grads)?;
        let (params, grads): (Vec<&wgpu::Buffer>, Vec<&wgpu::Buffer>) =
            m.slots.iter().copied().unzip();
        let optimizer = m.opt.bind(ctx, &params, &grads)?;
        Ok(Update {
            backward,
            optimizer,
        })
    }

    /// Writes the batch and records one run; returns the buffers the caller may read:
    /// the logits and (with labels) this run's totals.
    pub fn run(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        data: &RunData,
    ) -> Result<(&wgpu::Buffer, Option<&wgpu::Buffer>)> {
        let q = &ctx.queue;
        let mut at = 0;
        for chunk in &self.x {
            let n = (chunk.size() / 4) as usize;
            q.write_buffer(chunk, 0, bytemuck::cast_slice(&data.x[at..at + n]));
            at += n;
        }
        q.write_buffer(
            &self.forward.lens,
            0,
            bytemuck::cast_slice(&crate::gpu::lens_u32(data.lens)),
        );
        if let Some((labels, weights)) = data.labels {
            let count: f32 = weights.iter().sum();
            let p = XentParams {
                rows: self.head.rows as u32,
                classes: self.z.c as u32,
                scale: data.scale.unwrap_or(1.0 / count.max(1.0)),
                _pad: 0,
            };
            q.write_buffer(&self.head.labels, 0, bytemuck::cast_slice(labels));
            q.write_buffer(&self.head.weights, 0, bytemuck::cast_slice(weights));
            q.write_buffer(&self.head.xent_params, 0, bytemuck::bytes_of(&p));
        }
        self.forward.record(encoder, Start::Zero, None);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("dense + loss"),
                timestamp_writes: None,
            });
            let with_loss = data.labels.is_some();
            let grads = if self.train {
                &self.head_grads[..]
            } else {
                &[]
            };
            let loss = if with_loss { &self.loss[..] } else { &[] };
            for d in self.logits.iter().chain(loss).chain(grads) {
                d.record(&mut pass);
            }
        }
        if let Some(u) = &self.update {
            if data.backward {
                u.backward.record(encoder);
                super::gpu_gru::GruParts::record_mask(data.gru, encoder);
            }
            if let Some(rule) = &data.rule {
                u.optimizer.record(ctx, encoder, rule);
                super::gpu_gru::GruParts::record_pack(data.gru, encoder);
            }
        }
        Ok((&self.head.logits, data.labels.map(|_| &self.head.totals)))
    }
}

fn head_buffers(m: &JobModel, z: Sizes, layers: usize) -> Head {
    let ctx = m.lstm.context();
    let rows = match m.target {
        Target::LastStep => z.b,
        Target::EveryStep => z.t * z.b,
    };
    let dy_len = if m.target == Target::EveryStep {
        rows * z.d * z.h
    } else {
        1
    };
    let p = XentParams {
        rows: rows as u32,
        classes: z.c as u32,
        scale: 1.0,
        _pad: 0,
    };
    Head {
        logits: new_storage(ctx, "logits", rows * z.c, false),
        dlogits: new_storage(ctx, "dlogits", rows * z.c, false),
        stats: new_storage(ctx, "row stats", rows * 2, false),
        ones: storage_init(ctx, "ones", &vec![1.0; rows]),
        dh_n: new_storage(ctx, "dh_n", layers * z.d * z.b * z.h, false),
        dy: new_storage(ctx, "dy", dy_len, false),
        labels: storage_u32(ctx, "labels", &vec![0; rows]),
        weights: new_storage(ctx, "row weights", rows, false),
        xent_params: uniform(ctx, "xent params", &p),
        totals: new_storage(ctx, "totals", 2, false),
        rows,
    }
}

/// `logits = features · Wᵀ + b`; features: the top layer's `h_n` or the output sequence.
fn logits_dispatches(
    m: &JobModel,
    z: Sizes,
    head: &Head,
    (h_n, y): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Dispatch> {
    let ctx = m.lstm.context();
    let (w, b) = (m.dense.0, Some(m.dense.1));
    match m.target {
        Target::LastStep => (0..z.d)
            .map(|k| {
                let p = MatmulParams::new(z.b, z.c, z.h)
                    .b_trans()
                    .ldb(z.d * z.h)
                    .offsets((z.top + k) * z.b * z.h, k * z.h, 0);
                let p = if k == 0 { p.bias() } else { p.accumulate() };
                matmul::prepare(ctx, p, h_n, w, b, &head.logits)
            })
            .collect(),
        Target::EveryStep => {
            let p = MatmulParams::new(head.rows, z.c, z.d * z.h)
                .b_trans()
                .bias();
            vec![matmul::prepare(ctx, p, y, w, b, &head.logits)]
        }
    }
}

/// Softmax cross-entropy per row, then `totals = Σ_rows (loss, correct)`.
fn loss_dispatches(m: &JobModel, head: &Head) -> Result<Vec<Dispatch>> {
    let ctx = m.lstm.context();
    let bufs = XentBuffers {
        logits: &head.logits,
        labels: &head.labels,
        weights: &head.weights,
        dlogits: &head.dlogits,
        stats: &head.stats,
    };
    let sum = MatmulParams::new(1, 2, head.rows);
    Ok(vec![
        softmax_xent::prepare(ctx, &head.xent_params, head.rows as u32, &bufs)?,
        matmul::prepare(ctx, sum, &head.ones, &head.stats, None, &head.totals),
    ])
}

/// `dW = dlogitsᵀ·features`, `db = Σ_rows dlogits`, `dfeatures = dlogits·W`, and the
/// epoch's running totals (they grow on the GPU: no readback per step).
fn head_grad_dispatches(
    m: &JobModel,
    z: Sizes,
    head: &Head,
    (h_n, y): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Dispatch> {
    let ctx = m.lstm.context();
    let (dl, w, gw) = (&head.dlogits, m.dense.0, m.dense_grads.0);
    let mut out = vec![matmul::prepare(
        ctx,
        MatmulParams::new(1, z.c, head.rows),
        &head.ones,
        dl,
        None,
        m.dense_grads.1,
    )];
    match m.target {
        Target::LastStep => {
            for k in 0..z.d {
                let at = (z.top + k) * z.b * z.h;
                let p = MatmulParams::new(z.c, z.h, z.b)
                    .a_trans()
                    .ldc(z.d * z.h)
                    .offsets(0, at, k * z.h);
                out.push(matmul::prepare(ctx, p, dl, h_n, None, gw));
                let p = MatmulParams::new(z.b, z.h, z.c)
                    .ldb(z.d * z.h)
                    .offsets(0, k * z.h, at);
                out.push(matmul::prepare(ctx, p, dl, w, None, &head.dh_n));
            }
        }
        Target::EveryStep => {
            let p = MatmulParams::new(z.c, z.d * z.h, head.rows).a_trans();
            out.push(matmul::prepare(ctx, p, dl, y, None, gw));
            let p = MatmulParams::new(head.rows, z.d * z.h, z.c);
            out.push(matmul::prepare(ctx, p, dl, w, None, &head.dy));
        }
    }
    let running = MatmulParams::new(1, 2, head.rows).accumulate();
    out.push(matmul::prepare(
        ctx,
        running,
        &head.ones,
        &head.stats,
        None,
        m.running,
    ));
    out
}

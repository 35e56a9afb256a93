//! BPTT of one `(T, B)` shape, built once: per layer (top first) and direction, per
//! chunk of the forward's plan in backward order, one fused `lstm_step_backward`
//! dispatch per step (two for `gru_reset_before_step_backward`), then that chunk's
//! parameter-gradient sums (`lstm_param_grads` and three GEMMs, accumulated over
//! chunks) and its `dX`; a final dispatch gives `(dh_0, dc_0)`. Recording it again
//! creates nothing.
//!
//! Chunks share one `dz` scratch of a chunk's steps plus a boundary row: before a
//! chunk starts, the dz of its predecessor step (the last one of the chunk before it)
//! is copied to that row, which the chunk's first step reads.

use std::ops::Range;

use super::buffers::{new_storage, uniform, IndexTable};
use super::context::GpuContext;
use super::forward::{directed, TrainCache};
use super::kernels::lstm_param_grads::{self, GradParams, ParamGrads};
use super::kernels::lstm_step_backward::{self, BackwardBuffers, BackwardParams};
use super::kernels::matmul::{self, MatmulParams, SplitGemm};
use super::kernels::Cell;
use super::plan::ChunkPlan;
use super::weights::{GpuWeights, LayerBuffers};
use crate::error::{LstmError, Result};

/// Upstream gradients on the GPU (absent = zero).
#[derive(Clone, Copy, Default)]
pub(crate) struct GpuUpstream<'a> {
    /// Per chunk of the plan, `[Tc, B, D·H]` time-major.
    pub dy: Option<&'a [wgpu::Buffer]>,
    /// `[L·D, B, H]`.
    pub dh_n: Option<&'a wgpu::Buffer>,
    pub dc_n: Option<&'a wgpu::Buffer>,
}

/// One chunk of one layer-direction, bound.
struct ChunkWork {
    steps: lstm_step_backward::BoundSteps,
    /// The steps `s` of the backward order this chunk holds.
    order: Range<usize>,
    /// Copy the predecessor's dz from this row to the boundary row first.
    boundary_from: Option<usize>,
    param_grads: ParamGrads,
    /// dW_ih (+)= dZᵀ·X,  dW_rec (+)= dZᵀ·[H_prev; C_prev],  dX (+)= dZ·W_ih
    products: [SplitGemm; 3],
}

/// Everything a backward pass of one shape needs on the GPU.
pub(crate) struct BackwardJob {
    plan: ChunkPlan,
    /// `4·B·H` bytes: one `[B][H]` block of a carry.
    block: u64,
    index: IndexTable,
    /// Per layer-direction `[2][2][B][H]`: (dh, dc) ping-pong halves.
    carries: Vec<wgpu::Buffer>,
    /// `[len + 1][B][H]` vec4, shared by every chunk (see the module doc).
    dz: wgpu::Buffer,
    /// One dz row in transit to the boundary row (a buffer cannot copy onto itself).
    boundary: wgpu::Buffer,
    /// Per layer, per chunk `[Tc, B, I_l]`: dx of layer l is the dy of layer l-1.
    pub dxs: Vec<Vec<wgpu::Buffer>>,
    /// `[L·D, B, H]` each.
    pub dh0: wgpu::Buffer,
    pub dc0: wgpu::Buffer,
    dh_n: Option<wgpu::Buffer>,
    dc_n: Option<wgpu::Buffer>,
    /// Per layer-direction, top layer first, as recorded: `(d, chunks in backward order)`.
    work: Vec<(usize, Vec<ChunkWork>)>,
    /// The slices of every product split over K (`job_scratch`).
    scratch: wgpu::Buffer,
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
        if w.cell == Cell::LstmF16 {
            return Err(LstmError::Config(
                "f16 weights are for inference: train with GpuLstm::new (f32)".into(),
            ));
        }
        let cfg = &w.config;
        let (plan, b, h) = (cache.plan, cache.b, cfg.hidden_size);
        let ld_count = cfg.num_layers * cfg.num_directions();
        let per_chunk = |floats: usize| -> Vec<wgpu::Buffer> {
            let f = |r: Range<usize>| new_storage(ctx, "dx", r.len() * b * floats, false);
            plan.ranges().map(f).collect()
        };
        let mut job = BackwardJob {
            plan,
            block: 4 * (b * h) as u64,
            index: lstm_step_backward::index_table(ctx, &plan)?,
            carries: (0..ld_count)
                .map(|_| new_storage(ctx, "carry", 4 * b * h, false))
                .collect(),
            dz: new_storage(ctx, "dz", (plan.len + 1) * b * 4 * h, false),
            boundary: new_storage(ctx, "dz boundary", b * 4 * h, false),
            dxs: (0..cfg.num_layers)
                .map(|l| per_chunk(cfg.layer_input_size(l)))
                .collect(),
            dh0: new_storage(ctx, "dh0", ld_count * b * h, false),
            dc0: new_storage(ctx, "dc0", ld_count * b * h, false),
            dh_n: up.dh_n.cloned(),
            dc_n: up.dc_n.cloned(),
            work: Vec::new(),
            scratch: job_scratch(ctx, w, plan.len * b),
        };
        for l in (0..cfg.num_layers).rev() {
            let dy = match l + 1 == cfg.num_layers {
                true => up.dy.map(<[wgpu::Buffer]>::to_vec),
                false => Some(job.dxs[l + 1].clone()),
            };
            for d in 0..cfg.num_directions() {
                let ctx_w = (ctx, w, cache, grads);
                let chunks = job.bind_layer_direction(ctx_w, dy.as_deref(), (l, d))?;
                job.work.push((d, chunks));
            }
        }
        Ok(job)
    }

    /// The chunks of one layer-direction, in backward order.
    fn bind_layer_direction(
        &self,
        (ctx, w, cache, grads): (&GpuContext, &GpuWeights, &TrainCache, &[LayerBuffers]),
        dy: Option<&[wgpu::Buffer]>,
        (l, d): (usize, usize),
    ) -> Result<Vec<ChunkWork>> {
        let cfg = &w.config;
        let (b, h, dirs) = (cache.b, cfg.hidden_size, cfg.num_directions());
        let ld = l * dirs + d;
        let params = BackwardParams {
            batch: b as u32,
            hidden: h as u32,
            k_rec: cfg.recurrent_width() as u32,
            peephole: w.peephole_code(),
            dy_stride: (dirs * h) as u32,
            dy_offset: (d * h) as u32,
            has_dy: dy.is_some() as u32,
            _pad: 0,
        };
        let params = uniform(ctx, "backward params", &params);
        let mut out = Vec::new();
        // Backward runs the forward direction's chunks last to first.
        for (n, c) in directed(0..self.plan.count, d == 0).enumerate() {
            let range = self.plan.range(c);
            let start = match d {
                0 => self.plan.t - range.end,
                _ => range.start,
            };
            let bufs = BackwardBuffers {
                params: &params,
                w_rec: &w.layers[ld].w_rec,
                peep: &w.layers[ld].peep,
                gates: &cache.gates[ld][c],
                prev: &cache.prev[ld][c],
                lens: &cache.lens,
                dy: dy.map_or(ctx.dummy(), |dy| &dy[c]),
                dz: &self.dz,
                carry: &self.carries[ld],
            };
            let sums = self.bind_sums(ctx, w, cache, &grads[ld], (l, d, c), n > 0)?;
            out.push(ChunkWork {
                steps: lstm_step_backward::prepare(ctx, w.cell, &self.index, &bufs, (h, b))?,
                order: start..start + range.len(),
                boundary_from: (n > 0).then(|| lstm_step_backward::boundary_row(&self.plan, d)),
                param_grads: sums.0,
                products: sums.1,
            });
        }
        Ok(out)
    }

    /// Chunk `c`'s parameter-gradient sums (added to the earlier chunks' when `add`)
    /// and its part of dX.
    fn bind_sums(
        &self,
        ctx: &GpuContext,
        w: &GpuWeights,
        cache: &TrainCache,
        g: &LayerBuffers,
        (l, d, c): (usize, usize, usize),
        add: bool,
    ) -> Result<(ParamGrads, [SplitGemm; 3])> {
        let cfg = &w.config;
        let h = cfg.hidden_size;
        let ld = l * cfg.num_directions() + d;
        let rows = self.plan.range(c).len() * cache.b;
        let (gates, prev) = (&cache.gates[ld][c], &cache.prev[ld][c]);
        let gp = GradParams::new(rows, h, w.peephole_code(), add);
        let acc = |p: MatmulParams, on: bool| if on { p.accumulate() } else { p };
        let [d_ih, rec, dx] = products(w, l, rows);
        let (d_ih, rec, dx) = (acc(d_ih, add), acc(rec, add), acc(dx, d == 1));
        let input = &cache.layer_inputs[l][c];
        let (dz, w_ih, scratch) = (&self.dz, &w.layers[ld].w_ih, &self.scratch);
        Ok((
            lstm_param_grads::prepare(ctx, gp, [dz, gates, prev], [&g.bias, &g.peep])?,
            [
                matmul::prepare_split(ctx, d_ih, [dz, input], (None, &g.w_ih), scratch),
                matmul::prepare_split(ctx, rec, [dz, prev], (None, &g.w_rec), scratch),
                matmul::prepare_split(ctx, dx, [dz, w_ih], (None, &self.dxs[l][c]), scratch),
            ],
        ))
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
        let t = self.plan.t;
        // One pass, broken only where a boundary row must be copied between chunks.
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        for (d, chunks) in &self.work {
            for (i, chunk) in chunks.iter().enumerate() {
                if let Some(row) = chunk.boundary_from {
                    pass = None;
                    let bytes = 4 * block; // one dz row: a `[B][H]` block of vec4
                    let to = self.plan.len as u64 * bytes;
                    encoder.copy_buffer_to_buffer(
                        &self.dz,
                        row as u64 * bytes,
                        &self.boundary,
                        0,
                        bytes,
                    );
                    encoder.copy_buffer_to_buffer(&self.boundary, 0, &self.dz, to, bytes);
                }
                let p = pass.get_or_insert_with(|| {
                    let desc = wgpu::ComputePassDescriptor {
                        label: Some("lstm backward"),
                        timestamp_writes: None,
                    };
                    encoder.begin_compute_pass(&desc).forget_lifetime()
                });
                let at = (*d, t);
                lstm_step_backward::record_steps(
                    p,
                    &chunk.steps,
                    &self.index,
                    at,
                    chunk.order.clone(),
                );
                chunk.param_grads.record(p);
                for product in &chunk.products {
                    product.record(p);
                }
                if i + 1 == chunks.len() {
                    // FINAL, bound like the last chunk: its dz row is the last step's.
                    lstm_step_backward::record_steps(p, &chunk.steps, &self.index, at, t..t + 1);
                }
            }
        }
        drop(pass);
        // After T steps and FINAL (T + 1 dispatches) the newest carry is in half (T + 1) % 2.
        let fin = ((t + 1) % 2) as u64 * 2 * block;
        for (ld, c) in self.carries.iter().enumerate() {
            encoder.copy_buffer_to_buffer(c, fin, &self.dh0, ld as u64 * block, block);
            encoder.copy_buffer_to_buffer(c, fin + block, &self.dc0, ld as u64 * block, block);
        }
    }

    /// `∂L/∂x` per chunk, time-major `[Tc, B, I]`.
    pub fn dx(&self) -> Result<&[wgpu::Buffer]> {
        self.dxs
            .first()
            .map(Vec::as_slice)
            .ok_or_else(|| LstmError::Config("no layers".into()))
    }
}

/// Layer l's products over `rows` (T·B) cached rows, not accumulating: the weight
/// gradients dW_ih = dZᵀ·X and dW_rec = dZᵀ·[H_prev; C_prev], and dX = dZ·W_ih.
fn products(w: &GpuWeights, l: usize, rows: usize) -> [MatmulParams; 3] {
    let cfg = &w.config;
    let h = cfg.hidden_size;
    // The reset-before GRU's W_hn pairs with r ⊙ h_{t-1}, which its forward caches in
    // prev's c half: its dW_rec spans both halves ([H][4][2H]; `GpuGru` keeps columns
    // 0..H of slots 0, 1 and H..2H of slot 3, where its backward puts ∂n_pre).
    let kr = match w.cell {
        Cell::GruResetBefore => 2 * h,
        Cell::Lstm | Cell::LstmF16 | Cell::Gru => cfg.recurrent_width(),
    };
    [
        MatmulParams::new(4 * h, cfg.layer_input_size(l), rows).a_trans(),
        MatmulParams::new(4 * h, kr, rows).a_trans().ldb(2 * h),
        MatmulParams::new(rows, cfg.layer_input_size(l), 4 * h),
    ]
}

/// The scratch every split product of a job shares (they run one after another): the
/// most any layer's products want over the longest chunk.
fn job_scratch(ctx: &GpuContext, w: &GpuWeights, rows: usize) -> wgpu::Buffer {
    let floats = (0..w.config.num_layers)
        .flat_map(|l| products(w, l, rows))
        .map(|p| matmul::split_scratch_floats(ctx, &p))
        .max()
        .unwrap_or(0);
    matmul::split_scratch(ctx, floats)
}

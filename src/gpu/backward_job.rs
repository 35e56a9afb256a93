//! BPTT of one `(T, B)` shape, built once: per layer (top first) and direction (or both
//! directions at once, below), per chunk of the forward's plan in backward order, one
//! fused `lstm_step_backward` dispatch per step (two for
//! `gru_reset_before_step_backward`), then that chunk's parameter-gradient sums
//! (`lstm_param_grads` and three GEMMs, accumulated over chunks) and its `dX`; a final
//! dispatch gives `(dh_0, dc_0)`. Recording it again creates nothing.
//!
//! Chunks share one `dz` scratch of a chunk's steps plus a boundary row: before a
//! chunk starts, the dz of its predecessor step (the last one of the chunk before it)
//! is copied to that row, which the chunk's first step reads.
//!
//! Where the forward stepped both directions of a bidirectional layer per dispatch
//! (one chunk, `gpu/stacked.rs`), so does the backward: grid z = 2 over the forward's
//! stacked weights and cache, `dz` and the layer's carries in direction blocks. Direction
//! 1's weight gradients read its blocks of `dz` and of the cache in place (element
//! offsets): the same sums as over buffers of its own, the same bits.

use std::ops::Range;

use super::buffers::{new_storage, uniform, IndexTable};
use super::context::GpuContext;
use super::forward::directed;
use super::kernels::lstm_param_grads::{self, GradParams, ParamGrads};
use super::kernels::lstm_step_backward::{self, BackwardBuffers, BackwardParams};
use super::kernels::matmul::{self, MatmulParams, SplitGemm};
use super::kernels::Cell;
use super::plan::ChunkPlan;
use super::stacked::stacked_cache_stride;
use super::train_cache::TrainCache;
use super::weights::{GpuWeights, LayerBuffers};
use crate::error::{LstmError, Result};

mod record;

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
    /// `None`: direction 1 of a layer whose steps run in direction 0's dispatches; its
    /// sums read its block of `dz`.
    steps: Option<lstm_step_backward::BoundSteps>,
    /// The steps `s` of the backward order this chunk holds.
    order: Range<usize>,
    /// The predecessor step's dz row, copied to the boundary row first (see the module doc).
    boundary: Option<usize>,
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
    /// Per layer-direction `[2][2][B][H]`: (dh, dc) ping-pong halves, as a buffer and
    /// the byte offset of its block (both directions per dispatch: one buffer per layer).
    carries: Vec<(wgpu::Buffer, u64)>,
    /// `[len + 1][B][H]` vec4, shared by every chunk (see the module doc); both
    /// directions per dispatch: two such blocks.
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
        let dz_floats = (plan.len + 1) * b * 4 * h;
        // The forward stacks a training layer's directions only where this can step them.
        let both = !cache.stacked.is_empty();
        let per_chunk = |floats: usize| -> Vec<wgpu::Buffer> {
            let f = |r: Range<usize>| new_storage(ctx, "dx", r.len() * b * floats, false);
            plan.ranges().map(f).collect()
        };
        let mut job = BackwardJob {
            plan,
            block: 4 * (b * h) as u64,
            index: lstm_step_backward::index_table(ctx, &plan)?,
            carries: carries(ctx, (ld_count, 4 * b * h), both),
            dz: new_storage(ctx, "dz", (1 + both as usize) * dz_floats, false),
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
        let ld = l * w.config.num_directions() + d;
        let stacked = cache.stacked.get(l);
        // Direction 1 of a layer stepped with direction 0 binds only its sums.
        let stepped = !(stacked.is_some() && d == 1);
        let params = self.step_params(w, cache.b, dy.is_some(), (d, stacked.is_some()));
        let params = stepped.then(|| uniform(ctx, "backward params", &params));
        let mut out = Vec::new();
        // Backward runs the forward direction's chunks last to first.
        for (n, c) in directed(0..self.plan.count, d == 0).enumerate() {
            let range = self.plan.range(c);
            let start = match d {
                0 => self.plan.t - range.end,
                _ => range.start,
            };
            let steps = match &params {
                Some(params) => {
                    let bufs = self.step_buffers((ctx, w, cache), params, stacked, dy, (ld, c));
                    let dirs = 1 + stacked.is_some() as u32;
                    let (h, b) = (w.config.hidden_size, cache.b);
                    Some(lstm_step_backward::prepare(
                        ctx,
                        w.cell,
                        &self.index,
                        &bufs,
                        (h, b, dirs),
                    )?)
                }
                None => None,
            };
            let boundary =
                (stepped && n > 0).then(|| lstm_step_backward::boundary_row(&self.plan, d));
            let (param_grads, products) =
                self.bind_sums(ctx, w, cache, &grads[ld], (l, d, c), n > 0)?;
            out.push(ChunkWork {
                steps,
                order: start..start + range.len(),
                boundary,
                param_grads,
                products,
            });
        }
        Ok(out)
    }

    /// The step uniforms of direction `d` at batch `b`, or with `both` of both directions
    /// (direction 0's, with the strides of the direction blocks).
    fn step_params(
        &self,
        w: &GpuWeights,
        b: usize,
        has_dy: bool,
        (d, both): (usize, bool),
    ) -> BackwardParams {
        let (cfg, plan) = (&w.config, &self.plan);
        let h = cfg.hidden_size;
        let mut params = BackwardParams::new((b, h), cfg.recurrent_width(), w.peephole_code());
        if has_dy {
            params = params.with_dy((cfg.num_directions() * h, d * h));
        }
        if both {
            // One chunk: direction 1 mirrors direction 0's index entries over T steps.
            debug_assert!(plan.count == 1 && plan.len == plan.t);
            params.steps = plan.t as u32;
            params.cache_stride = stacked_cache_stride(plan, b, h);
            params.dz_stride = ((plan.len + 1) * b * h) as u32;
        }
        params
    }

    /// What chunk `c` of layer-direction `ld` steps over: its own buffers, or the layer's
    /// `stacked` weights (`TrainCache::stacked`) with both directions per dispatch, whose
    /// direction 0's cache block starts the stacked cache.
    fn step_buffers<'a>(
        &'a self,
        (ctx, w, cache): (&'a GpuContext, &'a GpuWeights, &'a TrainCache),
        params: &'a wgpu::Buffer,
        stacked: Option<&'a [wgpu::Buffer; 2]>,
        dy: Option<&'a [wgpu::Buffer]>,
        (ld, c): (usize, usize),
    ) -> BackwardBuffers<'a> {
        let own = &w.layers[ld];
        let [w_rec, peep] = match stacked {
            Some([w_rec, peep]) => [w_rec, peep],
            None => [&own.w_rec, &own.peep],
        };
        let (gates, prev) = (&cache.blocks[ld][c].gates, &cache.blocks[ld][c].prev);
        BackwardBuffers {
            params,
            w_rec,
            peep,
            gates,
            prev,
            lens: &cache.lens,
            dy: dy.map_or(ctx.dummy(), |dy| &dy[c]),
            dz: &self.dz,
            carry: &self.carries[ld].0,
        }
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
        let block = &cache.blocks[ld][c];
        let (gates, prev) = (&block.gates, &block.prev);
        // Direction 1 of a layer stepped with direction 0: its block of dz (entries).
        let dz_at = match cache.stacked.get(l).is_some() && d == 1 {
            true => (self.plan.len + 1) * cache.b * h,
            false => 0,
        };
        let gp = GradParams::new(rows, h, w.peephole_code(), add).at(dz_at, block.at);
        // The products read the same blocks by element offsets: dz's vec4, prev's pairs.
        let acc = |p: MatmulParams, on: bool| if on { p.accumulate() } else { p };
        let from = |p: MatmulParams, b_at: usize| p.offsets(4 * dz_at, b_at, 0);
        let [d_ih, rec, dx] = products(w, l, rows);
        let d_ih = from(acc(d_ih, add), 0);
        let rec = from(acc(rec, add), 2 * block.at);
        let dx = from(acc(dx, d == 1), 0);
        let (input, dz) = (&cache.layer_inputs[l][c], &self.dz);
        let (w_ih, scratch) = (&w.layers[ld].w_ih, &self.scratch);
        Ok((
            lstm_param_grads::prepare(ctx, gp, [dz, gates, prev], [&g.bias, &g.peep])?,
            [
                matmul::prepare_split(ctx, d_ih, [dz, input], (None, &g.w_ih), scratch),
                matmul::prepare_split(ctx, rec, [dz, prev], (None, &g.w_rec), scratch),
                matmul::prepare_split(ctx, dx, [dz, w_ih], (None, &self.dxs[l][c]), scratch),
            ],
        ))
    }

    /// `∂L/∂x` per chunk, time-major `[Tc, B, I]`.
    pub fn dx(&self) -> Result<&[wgpu::Buffer]> {
        self.dxs
            .first()
            .map(Vec::as_slice)
            .ok_or_else(|| LstmError::Config("no layers".into()))
    }
}

/// Per layer-direction, its carry of `floats` (`[2][2][B][H]`) as a buffer and byte
/// offset: a buffer each, or with `both` directions per dispatch one per layer holding
/// the two directions' blocks one after the other.
fn carries(
    ctx: &GpuContext,
    (count, floats): (usize, usize),
    both: bool,
) -> Vec<(wgpu::Buffer, u64)> {
    if !both {
        return (0..count)
            .map(|_| (new_storage(ctx, "carry", floats, false), 0))
            .collect();
    }
    let layer = |_| {
        let buf = new_storage(ctx, "carries", 2 * floats, false);
        [(buf.clone(), 0), (buf, 4 * floats as u64)]
    };
    (0..count / 2).flat_map(layer).collect()
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

//! The host schedule of a forward pass: chunk planning and command recording.
//!
//! Per layer and direction, per chunk of the sequence: one `matmul` GEMM (the input
//! projection) over all rows of the chunk, then one fused `lstm_step` dispatch per time
//! step (two for a GRU with the reset gate before the product, `gru_reset_before_step`). Every dispatch of every layer and direction goes into one compute pass; the
//! time index reaches the kernel through a dynamic uniform offset. `(h, c)` ping-pong
//! between two halves of a state buffer per layer-direction and carry across chunk
//! boundaries on the GPU. A [`ForwardJob`] owns the buffers and bind groups of one
//! shape, built once: recording it again creates nothing. `plan.rs` splits the
//! sequence; `host_forward.rs` keeps a job for repeated host calls. All of them use the
//! kernels; the kernels never use them.

use std::ops::Range;

use super::buffers::{new_storage, storage_u32, uniform, GpuState, IndexTable};
use super::context::GpuContext;
use super::kernels::gru_reset_before_step;
use super::kernels::lstm_step::{self, StepBuffers, StepParams, StepTiling};
use super::kernels::matmul::{self, MatmulParams};
use super::kernels::Dispatch;
use super::plan::ChunkPlan;
use super::stacked::{backward_fuses_directions, fuses_directions, StackedLayer};
use super::train_cache::{train_cache_blocks, CacheBlock, TrainCache};
use super::weights::GpuWeights;
use crate::error::Result;

mod both_directions;
pub(crate) mod record;

/// Where a run's `(h, c)` starts.
#[derive(Clone, Copy)]
pub(crate) enum Start<'a> {
    /// `[L·D, B, H]` buffers of `h_0` and `c_0`, copied in.
    From(&'a GpuState),
    /// All zeros (PyTorch's default): the state buffers are cleared, and each
    /// direction's first step skips its recurrent products (`StepIndex::from_zero`:
    /// every product would be +0, so the bits are the same).
    Zero,
}

/// The inputs of one recorded forward.
pub(crate) struct RunInputs<'a> {
    /// Time-major `[Tc, B, I]` per chunk of the plan.
    pub x_chunks: &'a [wgpu::Buffer],
    pub initial: Start<'a>,
    /// Valid length of each batch row.
    pub lens: &'a [usize],
    pub b: usize,
}

/// Buffers a recorded forward pass leaves behind.
pub(crate) struct RunBuffers {
    /// Output of the last layer, one buffer per chunk, time-major `[Tc, B, D·H]`.
    pub y_chunks: Vec<wgpu::Buffer>,
    /// `[L·D, B, H]`.
    pub h_n: wgpu::Buffer,
    pub c_n: wgpu::Buffer,
    pub cache: Option<TrainCache>,
}

/// Per-call options of [`record`].
pub(crate) struct RecordOptions {
    pub tiling: StepTiling,
    /// Fill outputs and scratch with NaN first (tests: unwritten elements show).
    pub poison: bool,
    /// Keep what backward needs (per chunk, see [`TrainCache`]).
    pub train: bool,
}

/// Records the whole forward pass into `encoder` (nothing is submitted here), with a
/// job built for this call: every buffer and bind group is new. [`ForwardJob`] keeps
/// them for calls that repeat a shape.
pub(crate) fn record(
    ctx: &GpuContext,
    w: &GpuWeights,
    encoder: &mut wgpu::CommandEncoder,
    plan: &ChunkPlan,
    inputs: &RunInputs,
    opts: &RecordOptions,
) -> Result<RunBuffers> {
    let job = ForwardJob::build(ctx, w, *plan, inputs, opts)?;
    ctx.queue
        .write_buffer(&job.lens, 0, bytemuck::cast_slice(&lens_u32(inputs.lens)));
    job.record(encoder, inputs.initial, None);
    Ok(job.into_run_buffers(inputs.x_chunks))
}

/// Sequence lengths as the kernels read them.
pub(crate) fn lens_u32(lens: &[usize]) -> Vec<u32> {
    lens.iter().map(|&n| n as u32).collect()
}

/// `range` forwards, or backwards for the reverse direction.
pub(crate) fn directed(range: Range<usize>, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new(range.rev())
    } else {
        Box::new(range)
    }
}

/// One chunk of one layer-direction (or of both directions of a layer): its input
/// projection, then its steps.
struct ChunkWork {
    projection: Dispatch,
    steps: wgpu::BindGroup,
    range: std::ops::Range<usize>,
    /// Steps walk the chunk backwards (the reverse direction on its own).
    reverse: bool,
    /// Directions per step dispatch: its grid z.
    directions: u32,
    /// The first chunk its direction steps (the last chunk for the reverse one).
    first: bool,
}

/// Everything one forward of a `(T, B)` shape needs on the GPU.
pub(crate) struct ForwardJob {
    pub plan: ChunkPlan,
    pub b: usize,
    pub tiling: StepTiling,
    pub train: bool,
    /// `[B]` u32 sequence lengths (written per call).
    pub lens: wgpu::Buffer,
    index: IndexTable,
    /// Per layer set, per chunk: outputs (all layers when training, else two ping-pong sets).
    y_sets: Vec<Vec<wgpu::Buffer>>,
    /// Per layer-direction `[2][2][B][H]`: (h, c) ping-pong halves; with both
    /// directions per dispatch, per layer `[2]` of those (see [`ForwardJob::state_slot`]).
    states: Vec<wgpu::Buffer>,
    /// Both directions of a layer step in one dispatch (`both_directions.rs`).
    both_directions: bool,
    /// Then: each layer's weights stacked, copied in at the start of a run.
    stacked: Vec<StackedLayer>,
    /// Training: per layer-direction, per chunk (see [`TrainCache`]).
    cache: Vec<Vec<CacheBlock>>,
    pub h_n: wgpu::Buffer,
    pub c_n: wgpu::Buffer,
    /// Per layer-direction, in recording order: its chunks in the direction's order.
    work: Vec<Vec<ChunkWork>>,
    /// The step pipeline of the tiling and its grid.
    step_kernel: (wgpu::ComputePipeline, (u32, u32)),
    /// A two-dispatch cell's second step pipeline (`gru_reset_before_step`'s) and grid.
    reset_n: Option<(wgpu::ComputePipeline, (u32, u32))>,
    layers: usize,
    dirs: usize,
    hidden: usize,
    /// Kept alive for the bind groups that read them.
    _keep: Vec<wgpu::Buffer>,
}

impl ForwardJob {
    /// Allocates and binds a forward over `inputs.x_chunks` (the buffers are bound, not
    /// copied: a cached job owns its own and rewrites them per call).
    pub fn build(
        ctx: &GpuContext,
        w: &GpuWeights,
        plan: ChunkPlan,
        inputs: &RunInputs,
        opts: &RecordOptions,
    ) -> Result<ForwardJob> {
        let cfg = &w.config;
        let (b, h) = (inputs.b, cfg.hidden_size);
        let (dirs, layers) = (cfg.num_directions(), cfg.num_layers);
        let scratch = |label: &str, floats: usize| new_storage(ctx, label, floats, opts.poison);
        let sets = if opts.train { layers } else { layers.min(2) };
        let y_sets: Vec<Vec<wgpu::Buffer>> = (0..sets)
            .map(|_| {
                plan.ranges()
                    .map(|r| scratch("y chunk", r.len() * b * dirs * h))
                    .collect()
            })
            .collect();
        let bh = b * h;
        let (pipeline, grid) = lstm_step::pipeline(ctx.kernels()?, w.cell, opts.tiling, h, b);
        let reset_n = gru_reset_before_step::reset_n(ctx.kernels()?, w.cell, opts.tiling, (h, b));
        if let Some((_, grid)) = reset_n {
            lstm_step::check_fits(ctx, "gru_reset_before_step", &[], grid)?;
        }
        // Training stacks a layer's directions only where its backward can step them so
        // too: the backward's steps read the cache in the same direction blocks.
        let both_directions = match opts.train {
            true => backward_fuses_directions(ctx, w, (&plan, b)),
            false => fuses_directions(ctx, w, (&plan, b)),
        };
        let (state_sets, gx_dirs) = match both_directions {
            true => (layers, 2),
            false => (layers * dirs, 1),
        };
        let mut job = ForwardJob {
            step_kernel: (pipeline.clone(), grid),
            reset_n: reset_n.map(|(p, grid)| (p.clone(), grid)),
            plan,
            b,
            tiling: opts.tiling,
            train: opts.train,
            lens: storage_u32(ctx, "seq lens", &vec![0; b]),
            index: lstm_step::index_table(ctx, plan.len, plan.range(plan.count - 1).len() - 1)?,
            states: (0..state_sets)
                .map(|_| scratch("state", gx_dirs * 4 * bh))
                .collect(),
            both_directions,
            stacked: Vec::new(),
            cache: match opts.train {
                true => train_cache_blocks(
                    ctx,
                    (layers, dirs),
                    (&plan, b, h),
                    both_directions,
                    opts.poison,
                ),
                false => Vec::new(),
            },
            h_n: scratch("h_n", layers * dirs * bh),
            c_n: scratch("c_n", layers * dirs * bh),
            y_sets,
            work: Vec::new(),
            layers,
            dirs,
            hidden: h,
            _keep: vec![scratch("gx", gx_dirs * plan.len * b * 4 * h)],
        };
        job.work = job.bind_all(ctx, w, inputs.x_chunks)?;
        Ok(job)
    }

    /// Where layer-direction `ld`'s state lives: its buffer and byte offset.
    fn state_slot(&self, ld: usize) -> (&wgpu::Buffer, u64) {
        let bytes = 4 * 4 * (self.b * self.hidden) as u64;
        match self.both_directions {
            true => (&self.states[ld / 2], (ld % 2) as u64 * bytes),
            false => (&self.states[ld], 0),
        }
    }

    fn set_of(&self, l: usize) -> usize {
        if self.train {
            l
        } else {
            l % 2
        }
    }

    /// The dispatches of every layer and chunk, bound once: per layer-direction, or
    /// per layer with both directions in each dispatch (`both_directions.rs`).
    fn bind_all(
        &mut self,
        ctx: &GpuContext,
        w: &GpuWeights,
        x_chunks: &[wgpu::Buffer],
    ) -> Result<Vec<Vec<ChunkWork>>> {
        let gx = self._keep[0].clone();
        let mut all = Vec::with_capacity(self.layers * self.dirs);
        for l in 0..self.layers {
            let input_set = if l == 0 {
                x_chunks.to_vec()
            } else {
                self.y_sets[self.set_of(l - 1)].clone()
            };
            if self.both_directions {
                let both = self.bind_both_directions(ctx, w, l, &input_set[0], &gx)?;
                all.push(vec![both]);
                continue;
            }
            for d in 0..self.dirs {
                all.push(self.bind_direction(ctx, w, (l, d), &input_set, &gx)?);
            }
        }
        Ok(all)
    }

    /// The step uniforms of direction `d`'s chunk `range` (one direction per dispatch).
    fn step_params(&self, w: &GpuWeights, range: Range<usize>, d: usize) -> StepParams {
        let h = self.hidden;
        StepParams {
            batch: self.b as u32,
            hidden: h as u32,
            k_rec: w.config.recurrent_width() as u32,
            peephole: w.peephole_code(),
            out_stride: (self.dirs * h) as u32,
            out_offset: (d * h) as u32,
            save_cache: self.train as u32,
            t_base: range.start as u32,
            parity_flip: lstm_step::parity_flip(self.plan.t, range.start, d == 1),
            gx_dirs: 1,
            chunk_len: range.len() as u32,
            cache_stride: 0,
        }
    }

    /// Layer `l`, direction `d`'s chunks in the direction's order, each projecting its
    /// chunk of `input_set` into `gx`.
    fn bind_direction(
        &self,
        ctx: &GpuContext,
        w: &GpuWeights,
        (l, d): (usize, usize),
        input_set: &[wgpu::Buffer],
        gx: &wgpu::Buffer,
    ) -> Result<Vec<ChunkWork>> {
        let (b, h) = (self.b, self.hidden);
        let ld = l * self.dirs + d;
        let lw = &w.layers[ld];
        let mut chunks = Vec::new();
        for c in directed(0..self.plan.count, d == 1) {
            let range = self.plan.range(c);
            let step_params = uniform(ctx, "step params", &self.step_params(w, range.clone(), d));
            let (gates, prev) = match self.cache.get(ld) {
                Some(blocks) => (&blocks[c].gates, &blocks[c].prev),
                None => (ctx.dummy(), ctx.dummy()),
            };
            let proj = MatmulParams::new(range.len() * b, 4 * h, w.config.layer_input_size(l))
                .b_trans()
                .bias();
            let bufs = StepBuffers {
                params: &step_params,
                w_rec: &lw.w_rec,
                peep: &lw.peep,
                gx,
                lens: &self.lens,
                state: &self.states[ld],
                out: &self.y_sets[self.set_of(l)][c],
                gates,
                prev,
            };
            chunks.push(ChunkWork {
                projection: matmul::prepare(ctx, proj, &input_set[c], &lw.w_ih, Some(&lw.bias), gx),
                steps: lstm_step::bind(ctx, &self.index, &bufs)?,
                first: c == if d == 1 { self.plan.count - 1 } else { 0 },
                range,
                reverse: d == 1,
                directions: 1,
            });
        }
        Ok(chunks)
    }

    /// Timed passes when profiling: a projection and a step chain per recorded chunk.
    pub fn pass_count(&self) -> u32 {
        (2 * self.work.iter().map(Vec::len).sum::<usize>()) as u32
    }

    /// The last layer's output chunks.
    pub fn y_chunks(&self) -> &[wgpu::Buffer] {
        &self.y_sets[self.set_of(self.layers - 1)]
    }

    /// What backward reads of a training job's runs (the job keeps its buffers).
    pub fn train_cache(&self, x_chunks: &[wgpu::Buffer]) -> Option<TrainCache> {
        self.train.then(|| {
            let mut layer_inputs = vec![x_chunks.to_vec()];
            layer_inputs.extend(self.y_sets[..self.layers - 1].iter().cloned());
            TrainCache {
                layer_inputs,
                blocks: self.cache.clone(),
                lens: self.lens.clone(),
                plan: self.plan,
                b: self.b,
                stacked: (self.stacked.iter())
                    .map(|layer| {
                        let [_, _, w_rec, peep] = &layer.parts;
                        [w_rec.clone(), peep.clone()]
                    })
                    .collect(),
            }
        })
    }

    /// What the run leaves behind, for a job built for one call.
    pub fn into_run_buffers(self, x_chunks: &[wgpu::Buffer]) -> RunBuffers {
        let y_chunks = self.y_chunks().to_vec();
        let cache = self.train_cache(x_chunks);
        RunBuffers {
            y_chunks,
            h_n: self.h_n,
            c_n: self.c_n,
            cache,
        }
    }
}

//! The host schedule of a forward pass: chunk planning and command recording.
//!
//! Per layer and direction, per chunk of the sequence: one `matmul` GEMM (the input
//! projection) over all rows of the chunk, then one fused `lstm_step` dispatch per time
//! step. Every dispatch of every layer and direction goes into one compute pass; the
//! time index reaches the kernel through a dynamic uniform offset. `(h, c)` ping-pong
//! between two halves of a state buffer per layer-direction and carry across chunk
//! boundaries on the GPU. This file uses the kernels; they never use it.

use std::ops::Range;

use super::buffers::{new_storage, storage_u32, uniform, GpuState, IndexTable};
use super::context::GpuContext;
use super::kernels::lstm_step::{self, StepBuffers, StepParams, StepTiling};
use super::kernels::matmul::{self, MatmulParams};
use super::timer::PassTimer;
use super::weights::GpuWeights;
use crate::error::{LstmError, Result};

/// How a sequence of `t` steps is split into chunks of at most `len` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkPlan {
    pub t: usize,
    pub len: usize,
    pub count: usize,
}

impl ChunkPlan {
    /// `widest` is the widest per-row buffer (max of I, D·H, 4H) in floats; every
    /// per-chunk buffer holds `len · b · width` floats and must fit `max_binding` bytes.
    pub fn new(
        t: usize,
        b: usize,
        widest: usize,
        hidden: usize,
        max_binding: u64,
        limits: &wgpu::Limits,
    ) -> Result<ChunkPlan> {
        let per_step = 4 * (b * widest) as u64;
        let state = 4 * (2 * b * hidden) as u64;
        if per_step > max_binding || state > max_binding {
            return Err(LstmError::DeviceLimit(format!(
                "one time step of batch {b} needs a {}-byte storage binding, the device allows {max_binding}",
                per_step.max(state)
            )));
        }
        let max_groups = limits.max_compute_workgroups_per_dimension as usize;
        let grid_ok = hidden.div_ceil(lstm_step::GEMV_TILE.0 as usize) <= max_groups
            && b.div_ceil(lstm_step::GEMV_TILE.1 as usize) <= max_groups;
        if !grid_ok || b > max_groups * matmul::MATMUL_TILE as usize {
            return Err(LstmError::DeviceLimit(format!(
                "hidden size {hidden} / batch {b} need more than the device's {max_groups} workgroups per dimension"
            )));
        }
        let by_binding = (max_binding / per_step) as usize;
        let by_grid = max_groups * matmul::MATMUL_TILE as usize / b;
        let len = t.min(by_binding).min(by_grid).max(1);
        Ok(ChunkPlan {
            t,
            len,
            count: t.div_ceil(len),
        })
    }

    pub fn range(&self, chunk: usize) -> Range<usize> {
        chunk * self.len..((chunk + 1) * self.len).min(self.t)
    }

    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.count).map(|c| self.range(c))
    }
}

/// The inputs of one recorded forward.
pub(crate) struct RunInputs<'a> {
    /// Time-major `[Tc, B, I]` per chunk of the plan.
    pub x_chunks: &'a [wgpu::Buffer],
    /// `[L·D, B, H]`.
    pub initial: &'a GpuState,
    /// Valid length of each batch row.
    pub lens: &'a [usize],
    pub b: usize,
}

/// Per-call buffers of a forward: scratch, outputs, and the training cache.
struct Scratch {
    gx: wgpu::Buffer,
    /// Per layer set (all layers when training, else two ping-pong sets), per chunk.
    y_sets: Vec<Vec<wgpu::Buffer>>,
    /// Per layer-direction `[2][2][B][H]`.
    states: Vec<wgpu::Buffer>,
    gates: Vec<wgpu::Buffer>,
    prev: Vec<wgpu::Buffer>,
    lens: wgpu::Buffer,
    index: IndexTable,
}

impl Scratch {
    fn new(
        ctx: &GpuContext,
        w: &GpuWeights,
        plan: &ChunkPlan,
        inputs: &RunInputs,
        opts: &RecordOptions,
    ) -> Result<Scratch> {
        let cfg = &w.config;
        let (b, h, dirs, layers) = (
            inputs.b,
            cfg.hidden_size,
            cfg.num_directions(),
            cfg.num_layers,
        );
        let scratch = |label: &str, floats: usize| new_storage(ctx, label, floats, opts.poison);
        // Training keeps every layer's output (they are the next layer's input for dW_ih);
        // inference ping-pongs two sets.
        let sets = if opts.train { layers } else { layers.min(2) };
        let y_sets = (0..sets)
            .map(|_| {
                plan.ranges()
                    .map(|r| scratch("y chunk", r.len() * b * dirs * h))
                    .collect()
            })
            .collect();
        let bh = b * h;
        let cache = |label: &str, floats: usize| -> Vec<wgpu::Buffer> {
            let n = if opts.train { layers * dirs } else { 0 };
            (0..n).map(|_| scratch(label, floats)).collect()
        };
        let lens: Vec<u32> = inputs.lens.iter().map(|&n| n as u32).collect();
        Ok(Scratch {
            index: lstm_step::index_table(ctx, plan.t, plan.len)?,
            lens: storage_u32(ctx, "seq lens", &lens),
            gx: scratch("gx", plan.len * b * 4 * h),
            y_sets,
            states: (0..layers * dirs)
                .map(|_| scratch("state", 4 * bh))
                .collect(),
            gates: cache("gates", plan.t * bh * 4),
            prev: cache("prev", plan.t * bh * 2),
        })
    }
}

/// What the training forward keeps for backward (single-chunk runs only).
pub(crate) struct TrainCache {
    /// Input of each layer, `[T, B, I_l]` time-major: `x` for layer 0, then the outputs below.
    pub layer_inputs: Vec<wgpu::Buffer>,
    /// Per layer-direction `[T][B][H]` vec4 of gate activations (i, f, g, o); 0 past a length.
    pub gates: Vec<wgpu::Buffer>,
    /// Per layer-direction `[T][B][2H]`: `h_{t-1}` then `c_{t-1}`.
    pub prev: Vec<wgpu::Buffer>,
    /// `[B]` u32 sequence lengths.
    pub lens: wgpu::Buffer,
    pub t: usize,
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
    /// With [`RecordOptions::profile`] on a device with timestamps: two timed passes per
    /// layer-direction-chunk, the input projection then the steps, in recording order.
    pub timer: Option<PassTimer>,
}

/// Per-call options of [`record`].
pub(crate) struct RecordOptions {
    pub tiling: StepTiling,
    /// Fill outputs and scratch with NaN first (tests: unwritten elements show).
    pub poison: bool,
    /// Keep what backward needs (requires a single chunk).
    pub train: bool,
    /// Time the input projections and the step chains with GPU timestamps: each goes
    /// into a compute pass of its own (instead of one pass for everything).
    pub profile: bool,
}

/// Records the whole forward pass into `encoder` (nothing is submitted here).
pub(crate) fn record(
    ctx: &GpuContext,
    w: &GpuWeights,
    encoder: &mut wgpu::CommandEncoder,
    plan: &ChunkPlan,
    inputs: &RunInputs,
    opts: &RecordOptions,
) -> Result<RunBuffers> {
    let cfg = &w.config;
    let (layers, dirs) = (cfg.num_layers, cfg.num_directions());
    if opts.train && plan.count > 1 {
        return Err(LstmError::DeviceLimit(format!(
            "training needs the whole sequence (T={}) in one binding; it fits {} steps",
            plan.t, plan.len
        )));
    }
    let sc = Scratch::new(ctx, w, plan, inputs, opts)?;
    let sbytes = 4 * (inputs.b * cfg.hidden_size) as u64;
    for (ld, st) in sc.states.iter().enumerate() {
        encoder.copy_buffer_to_buffer(&inputs.initial.h, ld as u64 * sbytes, st, 0, sbytes);
        encoder.copy_buffer_to_buffer(&inputs.initial.c, ld as u64 * sbytes, st, sbytes, sbytes);
    }
    let set_of = |l: usize| if opts.train { l } else { l % 2 };
    let mut timer = if opts.profile {
        PassTimer::new(ctx, (2 * layers * dirs * plan.count) as u32)
    } else {
        None
    };
    let mut pass = None;
    for l in 0..layers {
        let input_set = if l == 0 {
            inputs.x_chunks
        } else {
            &sc.y_sets[set_of(l - 1)][..]
        };
        for d in 0..dirs {
            let mut passes = Passes {
                encoder: &mut *encoder,
                pass: &mut pass,
                timer: timer.as_mut(),
            };
            let layer = LayerDirection {
                l,
                d,
                input_set,
                out_set: &sc.y_sets[set_of(l)],
            };
            record_layer_direction(ctx, w, &mut passes, plan, inputs.b, &sc, &layer, opts)?;
        }
    }
    drop(pass);
    if let Some(t) = &timer {
        t.resolve(encoder);
    }
    finish(ctx, w, encoder, plan, inputs, sc, opts, timer)
}

/// Where one layer-direction reads and writes.
struct LayerDirection<'a> {
    l: usize,
    d: usize,
    input_set: &'a [wgpu::Buffer],
    out_set: &'a [wgpu::Buffer],
}

/// The encoder, the open compute pass and the optional pass timer.
struct Passes<'e, 'p, 't> {
    encoder: &'e mut wgpu::CommandEncoder,
    pass: &'p mut Option<wgpu::ComputePass<'static>>,
    timer: Option<&'t mut PassTimer>,
}

impl Passes<'_, '_, '_> {
    fn next(&mut self, label: &str) -> &mut wgpu::ComputePass<'static> {
        next_pass(self.encoder, self.pass, self.timer.as_deref_mut(), label)
    }
}

/// Per chunk (in the direction's order): the input projection, then the steps.
#[allow(clippy::too_many_arguments)]
fn record_layer_direction(
    ctx: &GpuContext,
    w: &GpuWeights,
    passes: &mut Passes,
    plan: &ChunkPlan,
    b: usize,
    sc: &Scratch,
    at: &LayerDirection,
    opts: &RecordOptions,
) -> Result<()> {
    let cfg = &w.config;
    let (h, dirs) = (cfg.hidden_size, cfg.num_directions());
    let ld = at.l * dirs + at.d;
    let lw = &w.layers[ld];
    let params = StepParams {
        batch: b as u32,
        hidden: h as u32,
        k_rec: cfg.recurrent_width() as u32,
        peephole: w.peephole_code(),
        out_stride: (dirs * h) as u32,
        out_offset: (at.d * h) as u32,
        save_cache: opts.train as u32,
        _pad: 0,
    };
    let step_params = uniform(ctx, "step params", &params);
    let kernel = lstm_step::pipeline(ctx.kernels()?, opts.tiling, h, b);
    let reverse = at.d == 1;
    for c in directed(0..plan.count, reverse) {
        let r = plan.range(c);
        let proj = MatmulParams::new(r.len() * b, 4 * h, cfg.layer_input_size(at.l))
            .b_trans()
            .bias();
        let pass = passes.next("input projection");
        matmul::matmul(
            ctx,
            pass,
            proj,
            &at.input_set[c],
            &lw.w_ih,
            Some(&lw.bias),
            &sc.gx,
        );
        let (gates, prev) = if opts.train {
            (&sc.gates[ld], &sc.prev[ld])
        } else {
            (ctx.dummy(), ctx.dummy())
        };
        let bufs = StepBuffers {
            params: &step_params,
            w_rec: &lw.w_rec,
            peep: &lw.peep,
            gx: &sc.gx,
            lens: &sc.lens,
            state: &sc.states[ld],
            out: &at.out_set[c],
            gates,
            prev,
        };
        let pass = passes.next("lstm steps");
        lstm_step::record(
            ctx,
            pass,
            kernel,
            &sc.index,
            &bufs,
            at.d,
            directed(r, reverse),
        )?;
    }
    Ok(())
}

/// `range` forwards, or backwards for the reverse direction.
fn directed(range: Range<usize>, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new(range.rev())
    } else {
        Box::new(range)
    }
}

/// Copies the final states out and gathers what the run leaves behind.
#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &GpuContext,
    w: &GpuWeights,
    encoder: &mut wgpu::CommandEncoder,
    plan: &ChunkPlan,
    inputs: &RunInputs,
    sc: Scratch,
    opts: &RecordOptions,
    timer: Option<PassTimer>,
) -> Result<RunBuffers> {
    let cfg = &w.config;
    let (layers, dirs) = (cfg.num_layers, cfg.num_directions());
    let bh = inputs.b * cfg.hidden_size;
    let sbytes = 4 * bh as u64;
    let h_n = new_storage(ctx, "h_n", layers * dirs * bh, opts.poison);
    let c_n = new_storage(ctx, "c_n", layers * dirs * bh, opts.poison);
    // After T steps the newest state is in half T % 2 (step s reads half s % 2, writes the other).
    let fin = (plan.t % 2) as u64 * 2 * sbytes;
    for (ld, st) in sc.states.iter().enumerate() {
        encoder.copy_buffer_to_buffer(st, fin, &h_n, ld as u64 * sbytes, sbytes);
        encoder.copy_buffer_to_buffer(st, fin + sbytes, &c_n, ld as u64 * sbytes, sbytes);
    }
    let mut y_sets = sc.y_sets;
    let last = if opts.train {
        layers - 1
    } else {
        (layers - 1) % 2
    };
    let y_chunks = y_sets[last].clone();
    let cache = opts.train.then(|| {
        let mut layer_inputs = vec![inputs.x_chunks[0].clone()];
        layer_inputs.extend(y_sets.drain(..layers - 1).map(|mut set| set.remove(0)));
        TrainCache {
            layer_inputs,
            gates: sc.gates,
            prev: sc.prev,
            lens: sc.lens,
            t: plan.t,
            b: inputs.b,
        }
    });
    Ok(RunBuffers {
        y_chunks,
        h_n,
        c_n,
        cache,
        timer,
    })
}

/// The compute pass to record the next dispatches into: the open one, or (when
/// profiling, or before the first) a new one with the timer's next pair of timestamps.
fn next_pass<'p>(
    encoder: &mut wgpu::CommandEncoder,
    pass: &'p mut Option<wgpu::ComputePass<'static>>,
    timer: Option<&mut PassTimer>,
    label: &str,
) -> &'p mut wgpu::ComputePass<'static> {
    if timer.is_some() || pass.is_none() {
        *pass = None; // ends the open pass before the next begins
        let label = if timer.is_some() {
            label
        } else {
            "lstm forward"
        };
        let timestamp_writes = timer.and_then(PassTimer::next_pass);
        *pass = Some(
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(label),
                    timestamp_writes,
                })
                .forget_lifetime(),
        );
    }
    pass.as_mut().expect("opened above")
}

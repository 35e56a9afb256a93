//! The host schedule of a forward pass: chunk planning and command recording.
//!
//! Per layer and direction, per chunk of the sequence: one `matmul` GEMM (the input projection) over all
//! rows of the chunk, then one fused `lstm_step` dispatch per time step. Every dispatch
//! of every layer and direction goes into one compute pass; the time index reaches
//! the kernel through a dynamic uniform offset (`queue.write_buffer` between
//! dispatches would not work: all writes land before the submit). `(h, c)` ping-pong
//! between two buffers per layer-direction and carry across chunk boundaries on the GPU.

use std::num::NonZeroU64;
use std::ops::Range;

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::kernels::{
    MatmulParams, StepIndex, StepParams, StepTiling, GEMV_TILE, MATMUL_TILE, ROWS_TILE, TILED_TILE,
    UNITS_TILE,
};
use super::model::{storage_init, GpuLstm, GpuState};
use super::ops::{self, bind_group, uniform};
use super::timer::PassTimer;
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
        let grid_ok = hidden.div_ceil(GEMV_TILE.0 as usize) <= max_groups
            && b.div_ceil(GEMV_TILE.1 as usize) <= max_groups;
        if !grid_ok || b > max_groups * MATMUL_TILE as usize {
            return Err(LstmError::DeviceLimit(format!(
                "hidden size {hidden} / batch {b} need more than the device's {max_groups} workgroups per dimension"
            )));
        }
        let by_binding = (max_binding / per_step) as usize;
        let by_grid = max_groups * MATMUL_TILE as usize / b;
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
    #[allow(dead_code)]
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
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    model: &GpuLstm,
    encoder: &mut wgpu::CommandEncoder,
    plan: &ChunkPlan,
    b: usize,
    x_chunks: &[wgpu::Buffer],
    initial: &GpuState,
    lens: &[usize],
    opts: &RecordOptions,
) -> Result<RunBuffers> {
    let ctx = &model.ctx;
    let cfg = &model.config;
    let (h, dirs, layers) = (cfg.hidden_size, cfg.num_directions(), cfg.num_layers);
    if opts.train && plan.count > 1 {
        return Err(LstmError::DeviceLimit(format!(
            "training needs the whole sequence (T={}) in one binding; it fits {} steps",
            plan.t, plan.len
        )));
    }
    let scratch = |label: &str, floats: usize| new_storage(ctx, label, floats, opts.poison);

    // One StepIndex per (time step, direction), each at its own aligned offset.
    let align = (ctx.limits().min_uniform_buffer_offset_alignment as usize).max(16);
    let index_len = plan.t * 2 * align;
    if index_len as u64 > ctx.limits().max_buffer_size || index_len > u32::MAX as usize {
        return Err(LstmError::DeviceLimit(format!(
            "T = {} steps exceed the step-index buffer the device allows",
            plan.t
        )));
    }
    let mut index_bytes = vec![0u8; index_len];
    for t in 0..plan.t {
        for d in 0..2 {
            let s = if d == 0 { t } else { plan.t - 1 - t };
            let e = StepIndex {
                t_global: t as u32,
                t_local: (t % plan.len) as u32,
                parity: (s % 2) as u32,
                _pad: 0,
            };
            let at = (2 * t + d) * align;
            index_bytes[at..at + 16].copy_from_slice(bytemuck::bytes_of(&e));
        }
    }
    let step_index = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("step index"),
            contents: &index_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
    let lens_u32: Vec<u32> = lens.iter().map(|&n| n as u32).collect();
    let lens_buf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("seq lens"),
            contents: bytemuck::cast_slice(&lens_u32),
            usage: wgpu::BufferUsages::STORAGE,
        });

    let gx = scratch("gx", plan.len * b * 4 * h);
    // Training keeps every layer's output (they are the next layer's input for dW_ih);
    // inference ping-pongs two sets.
    let sets = if opts.train { layers } else { layers.min(2) };
    let set_of = |l: usize| if opts.train { l } else { l % 2 };
    let y_sets: Vec<Vec<wgpu::Buffer>> = (0..sets)
        .map(|_| {
            plan.ranges()
                .map(|r| scratch("y chunk", r.len() * b * dirs * h))
                .collect()
        })
        .collect();
    let bh = b * h;
    let states: Vec<wgpu::Buffer> = (0..layers * dirs)
        .map(|_| scratch("state", 4 * bh))
        .collect();
    let cache_bufs = |label: &str, floats: usize| -> Vec<wgpu::Buffer> {
        if opts.train {
            (0..layers * dirs).map(|_| scratch(label, floats)).collect()
        } else {
            Vec::new()
        }
    };
    let gates = cache_bufs("gates", plan.t * bh * 4);
    let prev = cache_bufs("prev", plan.t * bh * 2);
    let h_n = scratch("h_n", layers * dirs * bh);
    let c_n = scratch("c_n", layers * dirs * bh);
    let sbytes = 4 * bh as u64;
    for (ld, st) in states.iter().enumerate() {
        encoder.copy_buffer_to_buffer(&initial.h, ld as u64 * sbytes, st, 0, sbytes);
        encoder.copy_buffer_to_buffer(&initial.c, ld as u64 * sbytes, st, sbytes, sbytes);
    }

    let k = ctx.kernels()?;
    let (step_pipeline, tile) = match opts.tiling {
        StepTiling::Tiled => (&k.step_tiled, TILED_TILE),
        StepTiling::Units => (&k.step_units, UNITS_TILE),
        StepTiling::Rows => (&k.step_rows, ROWS_TILE),
        StepTiling::Gemv | StepTiling::Auto => (&k.step_gemv, GEMV_TILE),
    };
    let step_grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    let index_binding = wgpu::BufferBinding {
        buffer: &step_index,
        offset: 0,
        size: NonZeroU64::new(16),
    };
    let mut timer = if opts.profile {
        PassTimer::new(ctx, (2 * layers * dirs * plan.count) as u32)
    } else {
        None
    };
    {
        let mut pass = None;
        for l in 0..layers {
            let input_set = if l == 0 {
                x_chunks
            } else {
                &y_sets[set_of(l - 1)][..]
            };
            let out_set = &y_sets[set_of(l)];
            for d in 0..dirs {
                let ld = l * dirs + d;
                let lw = &model.layers[ld];
                let params = StepParams {
                    batch: b as u32,
                    hidden: h as u32,
                    k_rec: cfg.recurrent_width() as u32,
                    peephole: model.peephole_code(),
                    out_stride: (dirs * h) as u32,
                    out_offset: (d * h) as u32,
                    save_cache: opts.train as u32,
                    _pad: 0,
                };
                let step_params = uniform(ctx, "step params", &params);
                let chunks: Vec<usize> = if d == 0 {
                    (0..plan.count).collect()
                } else {
                    (0..plan.count).rev().collect()
                };
                for c in chunks {
                    let r = plan.range(c);
                    let proj = MatmulParams::new(r.len() * b, 4 * h, cfg.layer_input_size(l))
                        .b_trans()
                        .bias();
                    ops::matmul(
                        ctx,
                        next_pass(encoder, &mut pass, timer.as_mut(), "input projection"),
                        proj,
                        &input_set[c],
                        &lw.w_ih,
                        Some(&lw.bias),
                        &gx,
                    );

                    let (g_buf, p_buf) = if opts.train {
                        (&gates[ld], &prev[ld])
                    } else {
                        (ctx.dummy(), ctx.dummy())
                    };
                    let step_bg = bind_group(
                        ctx,
                        &k.step_layout,
                        &[
                            step_params.as_entire_binding(),
                            wgpu::BindingResource::Buffer(index_binding.clone()),
                            lw.w_rec.as_entire_binding(),
                            lw.peep.as_entire_binding(),
                            gx.as_entire_binding(),
                            lens_buf.as_entire_binding(),
                            states[ld].as_entire_binding(),
                            out_set[c].as_entire_binding(),
                            g_buf.as_entire_binding(),
                            p_buf.as_entire_binding(),
                        ],
                    );
                    let pass = next_pass(encoder, &mut pass, timer.as_mut(), "lstm steps");
                    pass.set_pipeline(step_pipeline);
                    let steps: Vec<usize> = if d == 0 {
                        r.collect()
                    } else {
                        r.rev().collect()
                    };
                    for t in steps {
                        pass.set_bind_group(0, &step_bg, &[((2 * t + d) * align) as u32]);
                        pass.dispatch_workgroups(step_grid.0, step_grid.1, 1);
                    }
                }
            }
        }
    }
    if let Some(t) = &timer {
        t.resolve(encoder);
    }
    // After T steps the newest state is in half T % 2 (step s reads half s % 2, writes the other).
    let fin = (plan.t % 2) as u64 * 2 * sbytes;
    for (ld, st) in states.iter().enumerate() {
        encoder.copy_buffer_to_buffer(st, fin, &h_n, ld as u64 * sbytes, sbytes);
        encoder.copy_buffer_to_buffer(st, fin + sbytes, &c_n, ld as u64 * sbytes, sbytes);
    }
    let mut y_sets = y_sets;
    let y_chunks = y_sets[set_of(layers - 1)].clone();
    let cache = opts.train.then(|| {
        let mut layer_inputs = vec![x_chunks[0].clone()];
        layer_inputs.extend(y_sets.drain(..layers - 1).map(|mut set| set.remove(0)));
        TrainCache {
            layer_inputs,
            gates,
            prev,
            lens: lens_buf.clone(),
            t: plan.t,
            b,
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

/// A storage buffer of `floats` f32, NaN-filled when `poison`.
pub(crate) fn new_storage(
    ctx: &GpuContext,
    label: &str,
    floats: usize,
    poison: bool,
) -> wgpu::Buffer {
    if poison {
        storage_init(ctx, label, &vec![f32::NAN; floats])
    } else {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: 4 * floats as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }
}

//! The host schedule of a forward pass: chunk planning and command recording.
//!
//! Per layer and direction, per chunk of the sequence: one `input_proj` GEMM over all
//! rows of the chunk, then one fused `lstm_step` dispatch per time step. Every dispatch
//! of every layer and direction goes into one compute pass; the time index reaches
//! the kernel through a dynamic uniform offset (`queue.write_buffer` between
//! dispatches would not work: all writes land before the submit). `(h, c)` ping-pong
//! between two buffers per layer-direction and carry across chunk boundaries on the GPU.

use std::num::NonZeroU64;
use std::ops::Range;

use wgpu::util::DeviceExt;

use super::kernels::{
    ProjParams, StepIndex, StepParams, StepTiling, GEMV_TILE, PROJ_TILE, TILED_TILE,
};
use super::model::{storage_init, GpuLstm, GpuState};
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
        if !grid_ok || b > max_groups * PROJ_TILE as usize {
            return Err(LstmError::DeviceLimit(format!(
                "hidden size {hidden} / batch {b} need more than the device's {max_groups} workgroups per dimension"
            )));
        }
        let by_binding = (max_binding / per_step) as usize;
        let by_grid = max_groups * PROJ_TILE as usize / b;
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

/// Buffers a recorded forward pass leaves behind.
pub(crate) struct RunBuffers {
    /// Output of the last layer, one buffer per chunk, time-major `[Tc, B, D·H]`.
    pub y_chunks: Vec<wgpu::Buffer>,
    /// `[L·D, B, H]`.
    pub h_n: wgpu::Buffer,
    pub c_n: wgpu::Buffer,
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
    tiling: StepTiling,
    poison: bool,
) -> Result<RunBuffers> {
    let ctx = &model.ctx;
    let cfg = &model.config;
    let dev = &ctx.device;
    let (h, dirs, layers) = (cfg.hidden_size, cfg.num_directions(), cfg.num_layers);
    let scratch = |label: &str, floats: usize| {
        if poison {
            storage_init(ctx, label, &vec![f32::NAN; floats])
        } else {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 4 * floats as u64,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        }
    };
    let uniform = |label: &str, bytes: &[u8]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        })
    };

    // One StepIndex per time step, each at its own aligned offset.
    let align = (ctx.limits().min_uniform_buffer_offset_alignment as usize).max(16);
    if (plan.t * align) as u64 > ctx.limits().max_buffer_size || plan.t * align > u32::MAX as usize
    {
        return Err(LstmError::DeviceLimit(format!(
            "T = {} steps exceed the step-index buffer the device allows",
            plan.t
        )));
    }
    let mut index_bytes = vec![0u8; plan.t * align];
    for t in 0..plan.t {
        let e = StepIndex {
            t_global: t as u32,
            t_local: (t % plan.len) as u32,
            _pad: [0; 2],
        };
        index_bytes[t * align..t * align + 16].copy_from_slice(bytemuck::bytes_of(&e));
    }
    let step_index = uniform("step index", &index_bytes);
    let lens_u32: Vec<u32> = lens.iter().map(|&n| n as u32).collect();
    let lens_buf = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("seq lens"),
        contents: bytemuck::cast_slice(&lens_u32),
        usage: wgpu::BufferUsages::STORAGE,
    });

    let gx = scratch("gx", plan.len * b * 4 * h);
    let y_sets: Vec<Vec<wgpu::Buffer>> = (0..layers.min(2))
        .map(|_| {
            plan.ranges()
                .map(|r| scratch("y chunk", r.len() * b * dirs * h))
                .collect()
        })
        .collect();
    let state_floats = b * h;
    let states: Vec<[wgpu::Buffer; 2]> = (0..layers * dirs)
        .map(|_| {
            [
                scratch("state a", 2 * state_floats),
                scratch("state b", 2 * state_floats),
            ]
        })
        .collect();
    let h_n = scratch("h_n", layers * dirs * state_floats);
    let c_n = scratch("c_n", layers * dirs * state_floats);
    let sbytes = 4 * state_floats as u64;
    for (ld, s) in states.iter().enumerate() {
        encoder.copy_buffer_to_buffer(&initial.h, ld as u64 * sbytes, &s[0], 0, sbytes);
        encoder.copy_buffer_to_buffer(&initial.c, ld as u64 * sbytes, &s[0], sbytes, sbytes);
    }

    let k = ctx.kernels()?;
    let (step_pipeline, tile) = match tiling {
        StepTiling::Tiled => (&k.step_tiled, TILED_TILE),
        _ => (&k.step_gemv, GEMV_TILE),
    };
    let step_grid = ((h as u32).div_ceil(tile.0), (b as u32).div_ceil(tile.1));
    let index_binding = wgpu::BufferBinding {
        buffer: &step_index,
        offset: 0,
        size: NonZeroU64::new(16),
    };
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("lstm forward"),
            timestamp_writes: None,
        });
        for l in 0..layers {
            let input_set = if l == 0 {
                x_chunks
            } else {
                &y_sets[(l - 1) % 2][..]
            };
            let out_set = &y_sets[l % 2];
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
                    _pad: [0; 2],
                };
                let step_params = uniform("step params", bytemuck::bytes_of(&params));
                let chunks: Vec<usize> = if d == 0 {
                    (0..plan.count).collect()
                } else {
                    (0..plan.count).rev().collect()
                };
                let mut s = 0usize;
                for c in chunks {
                    let r = plan.range(c);
                    let m = (r.len() * b) as u32;
                    let pp = ProjParams {
                        m,
                        n: 4 * h as u32,
                        k: cfg.layer_input_size(l) as u32,
                        _pad: 0,
                    };
                    let proj_params = uniform("proj params", bytemuck::bytes_of(&pp));
                    let proj_bg = bind_group(
                        dev,
                        &k.proj_layout,
                        &[
                            proj_params.as_entire_binding(),
                            input_set[c].as_entire_binding(),
                            lw.w_ih.as_entire_binding(),
                            lw.bias.as_entire_binding(),
                            gx.as_entire_binding(),
                        ],
                    );
                    pass.set_pipeline(&k.proj);
                    pass.set_bind_group(0, &proj_bg, &[]);
                    pass.dispatch_workgroups(pp.n.div_ceil(PROJ_TILE), m.div_ceil(PROJ_TILE), 1);

                    let step_bgs: Vec<wgpu::BindGroup> = (0..2)
                        .map(|p| {
                            bind_group(
                                dev,
                                &k.step_layout,
                                &[
                                    step_params.as_entire_binding(),
                                    wgpu::BindingResource::Buffer(index_binding.clone()),
                                    lw.w_rec.as_entire_binding(),
                                    lw.peep.as_entire_binding(),
                                    gx.as_entire_binding(),
                                    lens_buf.as_entire_binding(),
                                    states[ld][p].as_entire_binding(),
                                    states[ld][1 - p].as_entire_binding(),
                                    out_set[c].as_entire_binding(),
                                ],
                            )
                        })
                        .collect();
                    pass.set_pipeline(step_pipeline);
                    let steps: Vec<usize> = if d == 0 {
                        r.collect()
                    } else {
                        r.rev().collect()
                    };
                    for t in steps {
                        pass.set_bind_group(0, &step_bgs[s % 2], &[(t * align) as u32]);
                        pass.dispatch_workgroups(step_grid.0, step_grid.1, 1);
                        s += 1;
                    }
                }
            }
        }
    }
    // After T steps the newest state is in buffer T % 2 (step s reads s % 2, writes the other).
    for (ld, s) in states.iter().enumerate() {
        let fin = &s[plan.t % 2];
        encoder.copy_buffer_to_buffer(fin, 0, &h_n, ld as u64 * sbytes, sbytes);
        encoder.copy_buffer_to_buffer(fin, sbytes, &c_n, ld as u64 * sbytes, sbytes);
    }
    let y_chunks = y_sets
        .into_iter()
        .nth((layers - 1) % 2)
        .expect("at least one layer");
    Ok(RunBuffers { y_chunks, h_n, c_n })
}

fn bind_group(
    dev: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

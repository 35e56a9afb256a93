//! A forward from host arrays that keeps its job while the shape repeats: its own
//! input and staging buffers too, so a repeated `GpuLstm::forward` creates nothing.

use super::buffers::{new_storage, GpuState};
use super::context::GpuContext;
use super::forward::record::SEGMENT_STEPS;
use super::forward::{lens_u32, ForwardJob, RecordOptions, RunInputs, Start};
use super::plan::ChunkPlan;
use super::timer::PassTimer;
use super::weights::GpuWeights;
use crate::error::Result;

/// What one [`HostForward::run`] reads back.
pub(crate) struct HostRun {
    /// `[y chunks…, h_n, c_n]`.
    pub data: Vec<Vec<f32>>,
    /// Seconds of each timed pass, when run with a timer.
    pub pass_seconds: Option<Vec<f64>>,
}

/// A forward from host arrays for one shape: the job plus its own input buffers and
/// staging buffers, so that calling it again creates nothing.
pub(crate) struct HostForward {
    job: ForwardJob,
    x_chunks: Vec<wgpu::Buffer>,
    initial: GpuState,
    /// One per readback source: the y chunks, then h_n and c_n.
    staging: Vec<wgpu::Buffer>,
}

impl HostForward {
    pub fn build(
        ctx: &GpuContext,
        w: &GpuWeights,
        plan: ChunkPlan,
        b: usize,
        opts: &RecordOptions,
    ) -> Result<HostForward> {
        let cfg = &w.config;
        let x_chunks: Vec<wgpu::Buffer> = plan
            .ranges()
            .map(|r| new_storage(ctx, "x chunk", r.len() * b * cfg.input_size, false))
            .collect();
        let state = cfg.num_layers * cfg.num_directions() * b * cfg.hidden_size;
        let initial = GpuState {
            h: new_storage(ctx, "h_0", state, false),
            c: new_storage(ctx, "c_0", state, false),
        };
        let inputs = RunInputs {
            x_chunks: &x_chunks,
            initial: Start::Zero,
            lens: &[],
            b,
        };
        let job = ForwardJob::build(ctx, w, plan, &inputs, opts)?;
        let mut staging: Vec<wgpu::Buffer> =
            job.y_chunks().iter().map(|y| staging_for(ctx, y)).collect();
        staging.extend([staging_for(ctx, &job.h_n), staging_for(ctx, &job.c_n)]);
        Ok(HostForward {
            job,
            x_chunks,
            initial,
            staging,
        })
    }

    /// Whether this was built for the same plan, batch and options.
    pub fn fits(&self, plan: &ChunkPlan, b: usize, opts: &RecordOptions) -> bool {
        self.job.plan == *plan && self.job.b == b && self.job.tiling == opts.tiling && !opts.train
    }

    /// One run: writes the inputs (time-major `x`, state `[L·D, B, H]` h then c or
    /// `None` for zeros, lengths), records, submits and reads back `[y chunks…, h_n,
    /// c_n]`, and the seconds of each timed pass when given a timer.
    pub fn run(
        &self,
        ctx: &GpuContext,
        x: &[f32],
        initial: Option<(&[f32], &[f32])>,
        lens: &[usize],
        mut timer: Option<PassTimer>,
    ) -> Result<HostRun> {
        let mut at = 0;
        for buf in &self.x_chunks {
            let n = (buf.size() / 4) as usize;
            ctx.queue
                .write_buffer(buf, 0, bytemuck::cast_slice(&x[at..at + n]));
            at += n;
        }
        let start = match initial {
            Some((h0, c0)) => {
                ctx.queue
                    .write_buffer(&self.initial.h, 0, bytemuck::cast_slice(h0));
                ctx.queue
                    .write_buffer(&self.initial.c, 0, bytemuck::cast_slice(c0));
                Start::From(&self.initial)
            }
            None => Start::Zero,
        };
        ctx.queue
            .write_buffer(&self.job.lens, 0, bytemuck::cast_slice(&lens_u32(lens)));
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        match timer.as_mut() {
            // Profiled runs keep one command buffer (their timestamps are one set).
            Some(t) => self.job.record(&mut encoder, start, Some(t)),
            None => self.record_in_segments(ctx, &mut encoder, start)?,
        }
        let sources = self
            .job
            .y_chunks()
            .iter()
            .chain([&self.job.h_n, &self.job.c_n]);
        let mut pairs: Vec<(&wgpu::Buffer, &wgpu::Buffer, u64)> = sources
            .zip(&self.staging)
            .map(|(src, dst)| (src, dst, src.size()))
            .collect();
        let timer_staging = timer.as_ref().map(|t| {
            t.resolve(&mut encoder);
            (t.buffer(), ctx.staging(t.buffer().1))
        });
        if let Some(((src, bytes), dst)) = &timer_staging {
            pairs.push((src, dst, *bytes));
        }
        let mut data = ctx.submit_and_read_via(encoder, &pairs)?;
        let seconds = match (&timer, timer_staging.is_some()) {
            (Some(t), true) => data.pop().map(|ticks| t.durations(&ticks)),
            _ => None,
        };
        Ok(HostRun {
            data,
            pass_seconds: seconds,
        })
    }

    /// Submits all but the last segment of a long run, waiting for each (the commands
    /// of one segment are all that is held at once); records the last into `encoder`.
    fn record_in_segments(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        initial: Start,
    ) -> Result<()> {
        let mut segments = self.job.segments(SEGMENT_STEPS);
        let last = segments.pop().unwrap_or(0..0);
        for items in segments {
            let mut e = ctx.device.create_command_encoder(&Default::default());
            self.job.record_segment(&mut e, initial, items, None);
            ctx.submit_and_wait(e)?;
        }
        self.job.record_segment(encoder, initial, last, None);
        Ok(())
    }

    /// One run from a state that stays on the GPU (a stream): starts from `state`,
    /// leaves the final state in it, and reads back only the y chunks. Every row runs
    /// all the window's steps.
    pub fn run_resident(
        &self,
        ctx: &GpuContext,
        x: &[f32],
        state: &GpuState,
    ) -> Result<Vec<Vec<f32>>> {
        let mut at = 0;
        for buf in &self.x_chunks {
            let n = (buf.size() / 4) as usize;
            ctx.queue
                .write_buffer(buf, 0, bytemuck::cast_slice(&x[at..at + n]));
            at += n;
        }
        let lens = vec![self.job.plan.t; self.job.b];
        ctx.queue
            .write_buffer(&self.job.lens, 0, bytemuck::cast_slice(&lens_u32(&lens)));
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.record_in_segments(ctx, &mut encoder, Start::From(state))?;
        encoder.copy_buffer_to_buffer(&self.job.h_n, 0, &state.h, 0, state.h.size());
        encoder.copy_buffer_to_buffer(&self.job.c_n, 0, &state.c, 0, state.c.size());
        let pairs: Vec<(&wgpu::Buffer, &wgpu::Buffer, u64)> = (self.job.y_chunks().iter())
            .zip(&self.staging)
            .map(|(src, dst)| (src, dst, src.size()))
            .collect();
        ctx.submit_and_read_via(encoder, &pairs)
    }

    /// Timed passes of one run (for a [`PassTimer`]).
    pub fn pass_count(&self) -> u32 {
        self.job.pass_count()
    }
}

fn staging_for(ctx: &GpuContext, src: &wgpu::Buffer) -> wgpu::Buffer {
    ctx.staging(src.size())
}

/// Readback chunks of one output in order as one vector: the one chunk moved, several
/// joined by whole copies (not element by element).
pub(crate) fn joined(mut chunks: Vec<Vec<f32>>) -> Vec<f32> {
    match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => chunks.concat(),
    }
}

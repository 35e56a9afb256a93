//! GPU timestamps around compute passes, where the device has `TIMESTAMP_QUERY`.
//!
//! Each timed pass gets a pair of queries (start, end). After recording, `resolve`
//! copies the ticks into a buffer that the caller reads back together with its other
//! results (so timing adds no extra readback), and `durations` turns the raw words
//! into seconds per pass.

use super::context::GpuContext;

/// Pairs of timestamp queries, one pair per timed compute pass.
pub(crate) struct PassTimer {
    set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    pairs: u32,
    used: u32,
    period_ns: f64,
}

impl PassTimer {
    /// `None` where the device has no timestamp queries.
    pub fn new(ctx: &GpuContext, pairs: u32) -> Option<PassTimer> {
        if !ctx.has_timestamps() || pairs == 0 {
            return None;
        }
        let count = 2 * pairs;
        let set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolved = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("resolved timestamps"),
            size: u64::from(count) * wgpu::QUERY_SIZE as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some(PassTimer {
            set,
            resolved,
            pairs,
            used: 0,
            period_ns: ctx.timestamp_period_ns(),
        })
    }

    /// Timestamp writes for the next pass; `None` once every pair is used.
    pub fn next_pass(&mut self) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        if self.used == self.pairs {
            return None;
        }
        let i = 2 * self.used;
        self.used += 1;
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(i),
            end_of_pass_write_index: Some(i + 1),
        })
    }

    /// Records the copy of every used query into the buffer returned by [`PassTimer::buffer`].
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        if self.used > 0 {
            encoder.resolve_query_set(&self.set, 0..2 * self.used, &self.resolved, 0);
        }
    }

    /// The resolved ticks, `(buffer, bytes used)`, for a readback.
    pub fn buffer(&self) -> (&wgpu::Buffer, u64) {
        (
            &self.resolved,
            u64::from(2 * self.used.max(1)) * wgpu::QUERY_SIZE as u64,
        )
    }

    /// Seconds of each used pass, from the readback of [`PassTimer::buffer`]
    /// (u64 ticks that travelled as pairs of f32 words).
    pub fn durations(&self, words: &[f32]) -> Vec<f64> {
        let ticks: Vec<u64> = words
            .chunks_exact(2)
            .map(|w| u64::from(w[0].to_bits()) | (u64::from(w[1].to_bits()) << 32))
            .collect();
        ticks
            .chunks_exact(2)
            .take(self.used as usize)
            .map(|p| p[1].saturating_sub(p[0]) as f64 * self.period_ns * 1e-9)
            .collect()
    }
}

/// GPU time of one forward pass from timestamp queries, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardProfile {
    /// All input projections (the hoisted GEMMs).
    pub projection_s: f64,
    /// All step dispatches of all layers and directions.
    pub steps_s: f64,
}

impl ForwardProfile {
    /// Passes alternate projection, steps, projection, steps, … (see `forward::record`).
    pub(crate) fn from_passes(seconds: &[f64]) -> ForwardProfile {
        let sum = |parity: usize| seconds.iter().skip(parity).step_by(2).sum();
        ForwardProfile {
            projection_s: sum(0),
            steps_s: sum(1),
        }
    }

    /// Kernel time of the whole forward.
    pub fn total_s(&self) -> f64 {
        self.projection_s + self.steps_s
    }
}

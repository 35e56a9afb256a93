//! Recording a [`BackwardJob`]: the carries' start, every chunk's copies, steps and
//! sums in one compute pass (broken only for copies), and `(dh_0, dc_0)` at the end.

use super::{BackwardJob, ChunkWork};
use crate::gpu::kernels::lstm_step_backward;

impl BackwardJob {
    /// Records one run: the carries start from `(dh_n, dc_n)` (zero where absent).
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let block = self.block;
        for (ld, (c, at)) in self.carries.iter().enumerate() {
            // A reused job's carries hold the last run's values: start from zero.
            encoder.clear_buffer(c, *at, Some(4 * block));
            if let Some(dh) = &self.dh_n {
                encoder.copy_buffer_to_buffer(dh, ld as u64 * block, c, *at, block);
            }
            if let Some(dc) = &self.dc_n {
                encoder.copy_buffer_to_buffer(dc, ld as u64 * block, c, at + block, block);
            }
        }
        // One pass, broken only where a dz row must be copied.
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        for (d, chunks) in &self.work {
            for (i, chunk) in chunks.iter().enumerate() {
                self.record_chunk(encoder, &mut pass, (*d, chunk), i + 1 == chunks.len());
            }
        }
        drop(pass);
        // After T steps and FINAL (T + 1 dispatches) the newest carry is in half (T + 1) % 2.
        let fin = ((self.plan.t + 1) % 2) as u64 * 2 * block;
        for (ld, (c, at)) in self.carries.iter().enumerate() {
            let to = ld as u64 * block;
            encoder.copy_buffer_to_buffer(c, at + fin, &self.dh0, to, block);
            encoder.copy_buffer_to_buffer(c, at + fin + block, &self.dc0, to, block);
        }
    }

    /// One chunk of direction `d`: its boundary row's copy if any, its steps (and FINAL
    /// after the `last` chunk) unless direction 0's dispatches stepped it, then its sums.
    /// `pass` is ended before a copy and begun again after it.
    fn record_chunk(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pass: &mut Option<wgpu::ComputePass<'static>>,
        (d, chunk): (usize, &ChunkWork),
        last: bool,
    ) {
        if let Some(row) = chunk.boundary {
            *pass = None;
            // A buffer cannot copy onto itself: via `boundary`.
            let row_bytes = 4 * self.block; // one dz row: a `[B][H]` block of vec4
            let (from, to) = (row as u64 * row_bytes, self.plan.len as u64 * row_bytes);
            encoder.copy_buffer_to_buffer(&self.dz, from, &self.boundary, 0, row_bytes);
            encoder.copy_buffer_to_buffer(&self.boundary, 0, &self.dz, to, row_bytes);
        }
        let p = pass.get_or_insert_with(|| {
            let desc = wgpu::ComputePassDescriptor {
                label: Some("lstm backward"),
                timestamp_writes: None,
            };
            encoder.begin_compute_pass(&desc).forget_lifetime()
        });
        let t = self.plan.t;
        if let Some(steps) = &chunk.steps {
            let order = chunk.order.clone();
            lstm_step_backward::record_steps(p, steps, &self.index, (d, t), order);
            if last {
                // FINAL, bound like the last chunk: its dz row is the last step's.
                lstm_step_backward::record_steps(p, steps, &self.index, (d, t), t..t + 1);
            }
        }
        chunk.param_grads.record(p);
        for product in &chunk.products {
            product.record(p);
        }
    }
}

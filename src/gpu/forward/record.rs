//! Recording a [`ForwardJob`]: every dispatch of every layer-direction and chunk, in
//! one pass — or, for very long sequences, in segments of whole chunks that the host
//! submits one after another, so the recorded commands held at once stay bounded.

use std::ops::Range;

use super::{directed, ChunkWork, ForwardJob, Start};
use crate::gpu::kernels::{gru_reset_before_step, lstm_step};
use crate::gpu::timer::PassTimer;

/// The most time steps recorded into one command buffer by [`ForwardJob::segments`]:
/// a million-step sequence is ~16 submits, not one command buffer of a million
/// dispatches (over a gigabyte of recorded commands on a software adapter).
pub(crate) const SEGMENT_STEPS: usize = 65_536;

impl ForwardJob {
    /// Records one run from `initial` (nothing is created, nothing submitted).
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        initial: Start,
        timer: Option<&mut PassTimer>,
    ) {
        self.record_segment(encoder, initial, 0..self.item_count(), timer);
    }

    /// Every (layer-direction, chunk) item, in recording order.
    fn items(&self) -> impl Iterator<Item = &ChunkWork> {
        self.work.iter().flatten()
    }

    fn item_count(&self) -> usize {
        self.work.iter().map(Vec::len).sum()
    }

    /// The items cut into consecutive ranges of about `max_steps` time steps (at least
    /// one item each), to record and submit in turn with [`ForwardJob::record_segment`].
    pub fn segments(&self, max_steps: usize) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let (mut start, mut steps) = (0, 0);
        for (i, c) in self.items().enumerate() {
            if steps > 0 && steps + c.range.len() > max_steps {
                out.push(start..i);
                (start, steps) = (i, 0);
            }
            steps += c.range.len();
        }
        out.push(start..self.item_count());
        out
    }

    /// Records the items in `items`: the first segment starts from `initial`, the last
    /// copies the final state to `h_n`/`c_n`.
    pub fn record_segment(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        initial: Start,
        items: Range<usize>,
        mut timer: Option<&mut PassTimer>,
    ) {
        let sbytes = 4 * (self.b * self.hidden) as u64;
        if items.start == 0 {
            self.record_start(encoder, initial);
            for layer in &self.stacked {
                layer.record_copies(encoder);
            }
        }
        let kernel = (&self.step_kernel.0, self.step_kernel.1);
        let last = items.end == self.item_count();
        {
            let mut pass = None;
            for c in self.items().skip(items.start).take(items.len()) {
                let t = timer.as_deref_mut();
                c.projection
                    .record(next_pass(encoder, &mut pass, t, "input projection"));
                let pass = next_pass(encoder, &mut pass, timer.as_deref_mut(), "lstm steps");
                let from_zero = matches!(initial, Start::Zero) && c.first;
                let order = (c.range.len(), c.reverse);
                let local = step_entries(order, self.plan.len, from_zero);
                let (bg, index, dirs) = (&c.steps, &self.index, c.directions);
                match &self.reset_n {
                    None => lstm_step::record(pass, kernel, dirs, bg, index, local),
                    Some((p, grid)) => {
                        let kernels = [kernel, (p, *grid)];
                        gru_reset_before_step::record(pass, kernels, dirs, bg, index, local);
                    }
                }
            }
        }
        if last {
            // After T steps the newest state is in half T % 2 (step s reads half s % 2).
            let fin = (self.plan.t % 2) as u64 * 2 * sbytes;
            for ld in 0..self.layers * self.dirs {
                let (st, from) = self.state_slot(ld);
                let (from, to) = (from + fin, ld as u64 * sbytes);
                encoder.copy_buffer_to_buffer(st, from, &self.h_n, to, sbytes);
                encoder.copy_buffer_to_buffer(st, from + sbytes, &self.c_n, to, sbytes);
            }
        }
    }
}

impl ForwardJob {
    /// Puts every layer-direction's `(h, c)` where its first step reads it.
    fn record_start(&self, encoder: &mut wgpu::CommandEncoder, initial: Start) {
        let sbytes = 4 * (self.b * self.hidden) as u64;
        match initial {
            Start::Zero => {
                for st in &self.states {
                    encoder.clear_buffer(st, 0, None);
                }
            }
            Start::From(init) => {
                for ld in 0..self.layers * self.dirs {
                    let (st, at) = self.state_slot(ld);
                    let from = ld as u64 * sbytes;
                    encoder.copy_buffer_to_buffer(&init.h, from, st, at, sbytes);
                    encoder.copy_buffer_to_buffer(&init.c, from, st, at + sbytes, sbytes);
                }
            }
        }
    }
}

/// The index-table entries of a chunk's `steps` in the order they run (backwards when
/// `reverse`); the first from the zero-state entries when `from_zero` (its direction's
/// first step from all zeros).
fn step_entries(
    (steps, reverse): (usize, bool),
    table_len: usize,
    from_zero: bool,
) -> impl Iterator<Item = usize> {
    let local = directed(0..steps, reverse);
    local
        .enumerate()
        .map(move |(i, s)| match i == 0 && from_zero {
            true => lstm_step::from_zero_entry(table_len, s),
            false => s,
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

#[cfg(test)]
mod tests {
    use super::step_entries;

    /// A direction's first step from a zero state takes the table's zero-state entry
    /// (`table_len` for step 0, `table_len + 1` for the reverse start), and only that
    /// step; other chunks and starts take plain entries.
    #[test]
    fn only_the_first_step_from_zero_takes_the_zero_entry() {
        let entries = |order, zero| step_entries(order, 10, zero).collect::<Vec<_>>();
        assert_eq!(entries((4, false), true), [10, 1, 2, 3]);
        assert_eq!(entries((4, true), true), [11, 2, 1, 0]);
        assert_eq!(entries((4, false), false), [0, 1, 2, 3]);
        assert_eq!(entries((3, true), false), [2, 1, 0]);
    }
}

//! A stateful stream on the GPU (Keras `stateful=True`): the recurrent state of a batch
//! stays resident in GPU buffers between calls; each [`GpuStream::push`] runs a window
//! of one or more steps from it and leaves the new state there. Pushing a sequence in
//! any split gives the outputs of one forward over the whole sequence, bit for bit
//! (`tests/streaming.rs`). Single rows can be reset or set (a new utterance, a new
//! sensor session) without touching the others. CPU twin: `cpu::CpuStream`.

use std::collections::HashMap;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

use super::buffers::{new_storage, GpuState};
use super::host_forward::{joined, HostForward};
use super::lstm::GpuLstm;
use crate::error::{LstmError, Result};
use crate::sequence::{check_inputs, from_time_major, time_major, ForwardOptions, LstmState};

/// Distinct window lengths whose jobs a stream keeps (the rest are rebuilt on use).
const KEPT_WINDOWS: usize = 4;

/// A stream of windows through one [`GpuLstm`] for a fixed batch (see the module doc).
pub struct GpuStream<'m> {
    lstm: &'m GpuLstm,
    batch: usize,
    /// `[L·D, B, H]` each, resident.
    state: GpuState,
    /// The job of each recent window length.
    jobs: HashMap<usize, HostForward>,
}

impl GpuLstm {
    /// A stream of `batch` rows starting from a zero state. Streams run forward in time:
    /// a bidirectional model cannot stream (its reverse direction needs the end).
    pub fn stream(&self, batch: usize) -> Result<GpuStream<'_>> {
        let cfg = self.config();
        if cfg.bidirectional {
            return Err(LstmError::Config(
                "a bidirectional model cannot stream: its reverse direction starts at the sequence's end".into(),
            ));
        }
        if batch == 0 {
            return Err(LstmError::Config(
                "a stream needs a batch of at least 1".into(),
            ));
        }
        let floats = cfg.num_layers * batch * cfg.hidden_size;
        let ctx = &self.ctx;
        let state = ctx.scoped("stream state", || {
            Ok(GpuState {
                h: new_storage(ctx, "stream h", floats, false),
                c: new_storage(ctx, "stream c", floats, false),
            })
        })?;
        Ok(GpuStream {
            lstm: self,
            batch,
            state,
            jobs: HashMap::new(),
        })
    }
}

impl GpuStream<'_> {
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Runs the window `x` (`[T, B, I]`, or `[B, T, I]` when batch-first) from the
    /// stream's state and returns its outputs in the same layout; the state moves on.
    pub fn push(&mut self, x: ArrayView3<f32>) -> Result<Array3<f32>> {
        let lstm = self.lstm;
        let cfg = lstm.config();
        let dims = check_inputs(cfg, &x, &ForwardOptions::default())?;
        if dims.b != self.batch {
            return Err(LstmError::shape(
                "stream window batch",
                self.batch.to_string(),
                dims.b.to_string(),
            ));
        }
        let plan = lstm.plan(dims.t, dims.b)?;
        let opts = lstm.record_options(dims.b, false);
        let ctx = &lstm.ctx;
        let xt = time_major(cfg, &x);
        let flat = xt.as_slice().expect("time_major gives standard layout");
        if !self.jobs.contains_key(&dims.t) && self.jobs.len() >= KEPT_WINDOWS {
            self.jobs.clear();
        }
        let data = ctx.scoped("stream window", || {
            let job = match self.jobs.entry(dims.t) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(HostForward::build(ctx, &lstm.weights, plan, dims.b, &opts)?)
                }
            };
            job.run_resident(ctx, flat, &self.state)
        })?;
        let y = joined(data);
        let y = Array3::from_shape_vec((dims.t, dims.b, cfg.output_size()), y)
            .map_err(|e| LstmError::shape("stream output", "[T, B, H]", e.to_string()))?;
        Ok(from_time_major(cfg, y))
    }

    /// The current state `[L, B, H]` (a readback).
    pub fn state(&self) -> Result<LstmState> {
        self.lstm.read_state(&self.state, self.batch)
    }

    /// Replaces the whole state.
    pub fn set_state(&mut self, s: &LstmState) -> Result<()> {
        let want = [self.lstm.config().num_layers, self.batch, self.hidden()];
        for (name, a) in [("h", &s.h), ("c", &s.c)] {
            if a.shape() != want {
                return Err(LstmError::shape(
                    format!("stream state {name}"),
                    format!("{want:?}"),
                    format!("{:?}", a.shape()),
                ));
            }
        }
        let q = &self.lstm.ctx.queue;
        let h = s.h.as_standard_layout();
        let c = s.c.as_standard_layout();
        q.write_buffer(
            &self.state.h,
            0,
            bytemuck::cast_slice(h.as_slice().expect("standard")),
        );
        q.write_buffer(
            &self.state.c,
            0,
            bytemuck::cast_slice(c.as_slice().expect("standard")),
        );
        Ok(())
    }

    /// Zeroes the state of every row.
    pub fn reset(&mut self) -> Result<()> {
        let rows: Vec<usize> = (0..self.batch).collect();
        self.reset_rows(&rows)
    }

    /// Zeroes the state of the given rows; the other rows carry on.
    pub fn reset_rows(&mut self, rows: &[usize]) -> Result<()> {
        let zeros = Array2::zeros((self.lstm.config().num_layers, self.hidden()));
        for &row in rows {
            self.set_row(row, zeros.view(), zeros.view())?;
        }
        Ok(())
    }

    /// Sets the state of one row: `h`, `c` `[L, H]`.
    pub fn set_row(&mut self, row: usize, h: ArrayView2<f32>, c: ArrayView2<f32>) -> Result<()> {
        let (layers, hidden) = (self.lstm.config().num_layers, self.hidden());
        if row >= self.batch {
            return Err(LstmError::value(
                "stream row",
                format!("{row} is not below the batch of {}", self.batch),
            ));
        }
        if h.dim() != (layers, hidden) || c.dim() != (layers, hidden) {
            return Err(LstmError::shape(
                "stream row state h / c",
                format!("[{layers}, {hidden}]"),
                format!("{:?} / {:?}", h.shape(), c.shape()),
            ));
        }
        let q = &self.lstm.ctx.queue;
        for l in 0..layers {
            let at = 4 * ((l * self.batch + row) * hidden) as u64;
            q.write_buffer(&self.state.h, at, bytemuck::cast_slice(&h.row(l).to_vec()));
            q.write_buffer(&self.state.c, at, bytemuck::cast_slice(&c.row(l).to_vec()));
        }
        Ok(())
    }

    fn hidden(&self) -> usize {
        self.lstm.config().hidden_size
    }
}

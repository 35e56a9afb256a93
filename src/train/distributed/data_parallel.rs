//! [`DataParallel`]: a replica of the model plus a [`Collective`], seen by `fit` as one
//! [`Classifier`] that trains on whole global batches.

use std::ops::Range;

use ndarray::{Array2, Array3, ArrayView3, Axis, Slice};

use super::collective::{agree, Collective, Fingerprint};
use crate::error::{LstmError, Result};
use crate::train::classifier::{
    flatten, Batch, Classifier, ClassifierParams, OptimizerState, StepStats,
};

/// The rows of a global batch of `b` that `rank` of `size` takes: contiguous, sizes
/// differing by at most one (a rank may get none when `b < size`).
pub fn shard_rows(b: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    b * rank / size..b * (rank + 1) / size
}

/// One rank's view of data-parallel training. `train_step` takes the *global* batch
/// (every rank is given the same one), computes the gradients of its shard scaled by the
/// global row count, sums them over the ranks and applies one optimizer step: clipping
/// sees the global gradient, and every rank's replica takes the same step. The running
/// loss and accuracy and `evaluate` are summed over the ranks too, so every rank reports
/// the global figures; `evaluate` shards its batch as well.
pub struct DataParallel<'a> {
    inner: &'a mut dyn Classifier,
    comm: &'a dyn Collective,
    batch_first: bool,
    /// Floats in one flat gradient.
    grad_len: usize,
}

impl<'a> DataParallel<'a> {
    /// Wraps this rank's replica. Fails on every rank alike unless all replicas start
    /// from the same parameters and optimizer state, on the same kind of device.
    pub fn new(inner: &'a mut dyn Classifier, comm: &'a dyn Collective) -> Result<Self> {
        let params = inner.params()?;
        let flat = flatten(&params);
        let state = inner.optimizer_state()?;
        let start = Fingerprint::new()
            .floats(flat.iter().copied())
            .floats(flatten(&state.m))
            .floats(flatten(&state.v))
            .with(state.step)
            .finish();
        agree(
            comm,
            "the device they train on (mixing devices would let the replicas drift apart in the last bits; give every rank the same --device)",
            Fingerprint::new().with(inner.device_name()).finish(),
        )?;
        agree(comm, "the starting parameters and optimizer state", start)?;
        Ok(DataParallel {
            batch_first: params.lstm.config.batch_first,
            grad_len: flat.len(),
            inner,
            comm,
        })
    }

    /// Checks that every replica holds the same parameters (bit for bit).
    pub fn check_replicas(&self, when: &str) -> Result<()> {
        let p = flatten(&self.inner.params()?);
        agree(
            self.comm,
            &format!("the parameters {when} (the replicas diverged)"),
            Fingerprint::new().floats(p).finish(),
        )
    }

    fn rows(&self, b: usize) -> Range<usize> {
        shard_rows(b, self.comm.rank(), self.comm.size())
    }

    /// `(loss · count, correct, count)` summed over the ranks.
    fn sum_stats(&self, s: Option<StepStats>) -> Result<StepStats> {
        let s = s.unwrap_or(StepStats {
            loss: 0.0,
            correct: 0.0,
            count: 0.0,
        });
        let mut v = [
            f64::from(s.loss) * f64::from(s.count),
            f64::from(s.correct),
            f64::from(s.count),
        ];
        self.comm.sum_f64(&mut v)?;
        Ok(StepStats {
            loss: if v[2] > 0.0 {
                (v[0] / v[2]) as f32
            } else {
                0.0
            },
            correct: v[1] as f32,
            count: v[2] as f32,
        })
    }
}

/// A batch's `(T, B)`.
fn dims(x: &ArrayView3<f32>, batch_first: bool) -> (usize, usize) {
    let (d0, d1, _) = x.dim();
    if batch_first {
        (d1, d0)
    } else {
        (d0, d1)
    }
}

/// The rows every rank's loss is divided by: the global batch's labelled rows (one per
/// sequence, or one per valid step).
fn global_count(batch: &Batch, t: usize, b: usize) -> f32 {
    if batch.targets.len() == b {
        return b as f32;
    }
    match batch.seq_lens {
        Some(l) => l.iter().map(|&n| n.min(t)).sum::<usize>() as f32,
        None => (t * b) as f32,
    }
}

/// Rows `rows` of a batch, owned.
struct Shard {
    x: Array3<f32>,
    targets: Vec<usize>,
    seq_lens: Option<Vec<usize>>,
}

impl Shard {
    fn take(batch: &Batch, batch_first: bool, rows: Range<usize>) -> Result<Shard> {
        let (t, b) = dims(&batch.x, batch_first);
        let axis = Axis(if batch_first { 0 } else { 1 });
        let x = batch
            .x
            .slice_axis(axis, Slice::from(rows.clone()))
            .as_standard_layout()
            .into_owned();
        let tg = batch.targets;
        let targets = if tg.len() == b {
            tg[rows.clone()].to_vec()
        } else if tg.len() == t * b && batch_first {
            tg[rows.start * t..rows.end * t].to_vec()
        } else if tg.len() == t * b {
            (0..t)
                .flat_map(|ti| tg[ti * b + rows.start..ti * b + rows.end].iter().copied())
                .collect()
        } else {
            return Err(LstmError::shape(
                "targets",
                format!("{b} (one per sequence) or {} (one per step)", t * b),
                tg.len().to_string(),
            ));
        };
        let seq_lens = match batch.seq_lens {
            Some(l) if l.len() != b => {
                return Err(LstmError::shape(
                    "seq_lens",
                    b.to_string(),
                    l.len().to_string(),
                ))
            }
            Some(l) => Some(l[rows].to_vec()),
            None => None,
        };
        Ok(Shard {
            x,
            targets,
            seq_lens,
        })
    }

    fn batch(&self) -> Batch<'_> {
        Batch {
            x: self.x.view(),
            targets: &self.targets,
            seq_lens: self.seq_lens.as_deref(),
        }
    }
}

impl Classifier for DataParallel<'_> {
    fn train_step(&mut self, batch: &Batch, want_stats: bool) -> Result<Option<StepStats>> {
        let (t, b) = dims(&batch.x, self.batch_first);
        let rows = self.rows(b);
        let (mut grads, stats) = if rows.is_empty() {
            (vec![0.0; self.grad_len], None)
        } else {
            let shard = Shard::take(batch, self.batch_first, rows)?;
            let denominator = global_count(batch, t, b);
            self.inner
                .gradients(&shard.batch(), denominator, want_stats)?
        };
        if grads.len() != self.grad_len {
            return Err(LstmError::shape(
                "gradients",
                format!("{} floats", self.grad_len),
                grads.len().to_string(),
            ));
        }
        self.comm.sum_f32(&mut grads)?;
        self.inner.apply_gradients(&grads)?;
        if want_stats {
            return Ok(Some(self.sum_stats(stats)?));
        }
        Ok(None)
    }

    /// The epoch's global figures; also checks that the replicas still agree.
    fn take_running_stats(&mut self) -> Result<StepStats> {
        let local = self.inner.take_running_stats()?;
        let global = self.sum_stats(Some(local))?;
        self.check_replicas("at the end of an epoch")?;
        Ok(global)
    }

    fn evaluate(&self, batch: &Batch) -> Result<StepStats> {
        let (_, b) = dims(&batch.x, self.batch_first);
        let rows = self.rows(b);
        let local = if rows.is_empty() {
            None
        } else {
            let shard = Shard::take(batch, self.batch_first, rows)?;
            Some(self.inner.evaluate(&shard.batch())?)
        };
        self.sum_stats(local)
    }

    fn logits(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Array2<f32>> {
        self.inner.logits(x, seq_lens)
    }

    fn set_lr(&mut self, lr: f32) {
        self.inner.set_lr(lr);
    }

    fn params(&self) -> Result<ClassifierParams> {
        self.inner.params()
    }

    fn device_name(&self) -> String {
        format!(
            "{} — rank {} of {}",
            self.inner.device_name(),
            self.comm.rank(),
            self.comm.size()
        )
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        self.inner.optimizer_state()
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.inner.set_optimizer_state(state)
    }
}

//! What data-parallel training asks of its communication layer, and the agreement
//! check built on it.

use std::hash::{Hash, Hasher};

use crate::error::{LstmError, Result};

/// The collectives of data-parallel training. Every rank calls the same ones in the same
/// order (a rank that stops calling them must end the job: see `Mpi::abort`, feature `mpi`).
pub trait Collective {
    /// This rank, from 0.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Element-wise sum over every rank, in place; every rank gets the same bits.
    fn sum_f32(&self, buf: &mut [f32]) -> Result<()>;
    /// [`sum_f32`](Self::sum_f32) for statistics kept in f64.
    fn sum_f64(&self, buf: &mut [f64]) -> Result<()>;
    /// Every rank's `value`, indexed by rank, on every rank.
    fn gather_u64(&self, value: u64) -> Result<Vec<u64>>;
}

/// A 64-bit digest of what must be the same on every rank (settings, data, parameters):
/// SipHash with fixed keys, so equal inputs give equal digests in every process of one
/// build.
#[derive(Default)]
pub struct Fingerprint(std::collections::hash_map::DefaultHasher);

impl Fingerprint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds floats by their bits (so `-0.0 ≠ 0.0` and NaNs compare by payload).
    pub fn floats(mut self, v: impl IntoIterator<Item = f32>) -> Self {
        for x in v {
            x.to_bits().hash(&mut self.0);
        }
        self
    }

    /// Adds anything hashable.
    pub fn with(mut self, v: impl Hash) -> Self {
        v.hash(&mut self.0);
        self
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Fails on every rank alike unless every rank passed the same `fingerprint` of `what`,
/// naming the ranks that differ from rank 0.
pub fn agree(comm: &dyn Collective, what: &str, fingerprint: u64) -> Result<()> {
    let all = comm.gather_u64(fingerprint)?;
    let differ: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(_, &f)| f != all[0])
        .map(|(r, _)| r.to_string())
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(LstmError::Distributed(format!(
        "in {what}, rank(s) {} (of {}) differ from rank 0; start every rank with the same settings, data and files",
        differ.join(", "),
        all.len()
    )))
}

//! Data-parallel training: every rank (process, or thread) holds a replica of the model,
//! takes its shard of every global batch, computes gradients on its own device, and the
//! gradients are summed over the ranks before one identical optimizer step on each.
//!
//! - [`Collective`]: the few collectives the loop needs (sum, gather); `Mpi` implements
//!   them over MPI (feature `mpi`), a test can implement them over threads;
//! - [`DataParallel`]: a [`Classifier`](super::Classifier) made of a local replica and a
//!   collective, so [`fit`](super::fit()) runs unchanged on every rank;
//! - [`fit_distributed`]: checks that the ranks agree (data, settings, devices, starting
//!   parameters), then runs `fit_from` through a `DataParallel`.
//!
//! With the same seed and global batch, N ranks end with the weights of one process up
//! to the summation order of the gradient (float tolerance, `tests/data_parallel.rs`).

mod collective;
mod data_parallel;
mod fit;
#[cfg(feature = "mpi")]
mod mpi;

pub use collective::{agree, Collective, Fingerprint};
pub use data_parallel::{shard_rows, DataParallel};
pub use fit::fit_distributed;
#[cfg(feature = "mpi")]
pub use mpi::Mpi;

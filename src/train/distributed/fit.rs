//! [`fit_distributed`]: the training loop on every rank of a data-parallel run.

use super::collective::{agree, Collective, Fingerprint};
use super::data_parallel::DataParallel;
use crate::error::Result;
use crate::train::classifier::Classifier;
use crate::train::data::Dataset;
use crate::train::fit::{fit_from, FitConfig, FitObserver, History};

/// [`fit_from`] on one rank of a data-parallel run: call it on every rank with the same
/// data, settings and starting model (it checks, and fails on every rank alike when they
/// differ). Each rank trains `model`, its replica, on its shard of every global batch of
/// `cfg.batch`; the history it returns holds the global figures, the same on every
/// rank. Give rank 0 the observer that writes checkpoints and logs, the others `()`.
///
/// A rank whose call fails stops taking part in the collectives: the caller must then
/// end the whole job (over MPI, `Mpi::abort`), or the other ranks wait for
/// it forever.
pub fn fit_distributed(
    model: &mut dyn Classifier,
    comm: &dyn Collective,
    train: &Dataset,
    eval: &Dataset,
    cfg: &FitConfig,
    done: History,
    observer: &mut dyn FitObserver,
) -> Result<History> {
    agree(comm, "the training data", data_fingerprint(train))?;
    agree(comm, "the evaluation data", data_fingerprint(eval))?;
    let settings = Fingerprint::new()
        .with(format!("{cfg:?}"))
        .with(done.epochs.len())
        .finish();
    agree(
        comm,
        "the loop's settings (epochs, batch, learning rate, schedule, seed) or finished epochs",
        settings,
    )?;
    let mut dp = DataParallel::new(model, comm)?;
    fit_from(&mut dp, train, eval, cfg, done, observer)
}

fn data_fingerprint(d: &Dataset) -> u64 {
    Fingerprint::new()
        .with(d.x().dim())
        .floats(d.x().iter().copied())
        .with(d.labels())
        .finish()
}

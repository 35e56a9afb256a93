//! `mpirun -np N lstm-wgpu train --distributed …` (feature `mpi`): every rank loads the
//! same data and starts from the same model, trains on its shard of every batch
//! (`train::distributed::fit_distributed`), and rank 0 alone prints, shows the progress
//! bar and writes the checkpoint, the training state and the plot. A rank that fails
//! ends the whole job (`MPI_Abort`) after saying why, so no rank waits for it.

use lstm_wgpu::error::report;
use lstm_wgpu::train::distributed::{fit_distributed, shard_rows, Collective, Mpi};
use lstm_wgpu::train::TrainingState;
use lstm_wgpu::Result;

use super::train::{device, finish, Args, Bars, Prepared};

pub fn run(a: &Args, resumed: Option<TrainingState>) -> Result<()> {
    let mpi = Mpi::init()?;
    let result = train(&mpi, a, resumed);
    if let Err(e) = &result {
        if mpi.size() > 1 {
            let (rank, size) = (mpi.rank(), mpi.size());
            eprintln!(
                "rank {rank} of {size} failed: {}\nrank {rank} ends every rank of the job (MPI_Abort) so that none waits for it",
                report(e)
            );
            mpi.abort(1);
        }
    }
    result
}

fn train(mpi: &Mpi, a: &Args, resumed: Option<TrainingState>) -> Result<()> {
    let (rank, size) = (mpi.rank(), mpi.size());
    let lead = rank == 0;
    let device = device(a.device, a.adapter_per_rank.then_some(rank), lead)?;
    let Prepared {
        mut model,
        train,
        test,
        test_name,
        fit_cfg,
        done,
    } = Prepared::new(a, resumed, &device, lead)?;
    let rows = shard_rows(a.batch, rank, size);
    println!(
        "rank {rank} of {size} (pid {}): {}, rows {}..{} of every batch of {}",
        std::process::id(),
        model.device_name(),
        rows.start,
        rows.end,
        a.batch
    );
    if !lead {
        fit_distributed(model.as_mut(), mpi, &train, &test, &fit_cfg, done, &mut ())?;
        return Ok(());
    }
    let mut bars = Bars::new(a, test_name);
    let history = fit_distributed(
        model.as_mut(),
        mpi,
        &train,
        &test,
        &fit_cfg,
        done,
        &mut bars,
    )
    .inspect_err(|_| bars.explain_stop())?;
    bars.close();
    let name = format!("{} × {size} ranks", model.device_name());
    finish(a, model.as_ref(), &name, &history, &test)
}

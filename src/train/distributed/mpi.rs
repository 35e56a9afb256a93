//! [`Collective`] over MPI (feature `mpi`, the `mpi` crate over the system's MPI
//! library): start the program with `mpirun -np N …`; alone it is a world of one rank.

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use super::collective::Collective;
use crate::error::{LstmError, Result};

/// MPI's world communicator. Dropping it finalises MPI.
pub struct Mpi {
    world: SimpleCommunicator,
    _universe: mpi::environment::Universe,
}

/// Elements per MPI call: counts are C ints, so longer buffers go in pieces.
const PIECE: usize = 1 << 28;

impl Mpi {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize().ok_or_else(|| {
            LstmError::Distributed("MPI was already initialised in this process".into())
        })?;
        Ok(Mpi {
            world: universe.world(),
            _universe: universe,
        })
    }

    /// Ends every rank of the job with exit code `code` (`MPI_Abort`): what a rank whose
    /// training failed calls, so that the others stop instead of waiting for it.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_f32(&self, buf: &mut [f32]) -> Result<()> {
        for piece in buf.chunks_mut(PIECE) {
            let send = piece.to_vec();
            self.world
                .all_reduce_into(&send[..], piece, SystemOperation::sum());
        }
        Ok(())
    }

    fn sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        for piece in buf.chunks_mut(PIECE) {
            let send = piece.to_vec();
            self.world
                .all_reduce_into(&send[..], piece, SystemOperation::sum());
        }
        Ok(())
    }

    fn gather_u64(&self, value: u64) -> Result<Vec<u64>> {
        let mut all = vec![0u64; self.size()];
        self.world.all_gather_into(&value, &mut all[..]);
        Ok(all)
    }
}

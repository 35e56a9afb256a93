//! Training a sequence classifier (LSTM → Dense → softmax cross-entropy) with Adam or
//! SGD, on the GPU or the CPU:
//!
//! - [`optimizer`]: the settings ([`TrainConfig`]), one type for both devices;
//! - [`classifier`]: the model, defined once, run on either device ([`Device`]);
//! - [`data`]: a labelled data set and its shuffled batches;
//! - [`fit`](mod@fit): the loop — epochs, learning-rate schedule, evaluation,
//!   progress callbacks — as a library call (the CLI only wraps it);
//! - `init` and `checkpoint`: initial weights and safetensors checkpoints (atomic);
//! - [`training_state`]: what a run needs to resume after a crash;
//! - [`distributed`]: data-parallel training (a replica per rank, gradients summed over
//!   the ranks; over MPI with the feature `mpi`).

pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod distributed;
pub mod fit;
pub mod init;
pub mod optimizer;
pub mod training_state;

pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use classifier::{
    flatten, unflatten_into, Batch, Classifier, ClassifierParams, CpuClassifier, Dense, Device,
    GpuClassifier, GruClassifier, GruClassifierParams, OptimizerState, StepStats,
};
pub use data::Dataset;
pub use fit::{fit, fit_from, FitConfig, FitObserver, History, LrSchedule};
pub use init::Init;
pub use optimizer::{Optimizer, Target, TrainConfig};
pub use training_state::{StateParams, TrainingState};

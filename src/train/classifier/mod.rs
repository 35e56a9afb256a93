//! The classifier — LSTM → Dense → softmax cross-entropy — defined once (`model.rs`:
//! its parameters, batches, statistics and the [`Classifier`] trait), backed by the CPU
//! ([`CpuClassifier`]) and the GPU ([`GpuClassifier`]) with the same math; [`Device`]
//! picks one at run time. [`GruClassifier`] is the same model with a GRU on the CPU;
//! [`GpuClassifier::new_gru`] the GRU's on the GPU ([`Device::gru_classifier`] picks).
//!
//! The LSTM's two biases are trained as one parameter `b = b_ih + b_hh` (the forward
//! only ever sees their sum); checkpoints store it in `b_ih` with `b_hh = 0`.

mod cpu;
mod device;
mod flat;
mod gpu;
mod gpu_gru;
mod gpu_gru_state;
mod gpu_job;
mod gpu_record;
mod gpu_split;
mod gpu_state;
mod gru_cpu;
mod head;
mod model;

pub use cpu::CpuClassifier;
pub use device::Device;
pub use flat::{flatten, unflatten_into};
pub(crate) use flat::{param_slices, standardize};
pub use gpu::GpuClassifier;
pub use gru_cpu::GruClassifier;
pub use model::{
    Batch, Classifier, ClassifierParams, Dense, GruClassifierParams, OptimizerState, StepStats,
};

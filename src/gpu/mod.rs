//! The GPU path, read top-down as the data path:
//!
//! - `context`: adapter, device, error scopes, the one readback, creation counts;
//! - `buffers`: every buffer and bind group, and the GPU-resident data types;
//! - `pack` and `weights`: the kernels' weight layout, uploaded once;
//! - [`kernels`]: one file per shader (uniform struct, tiles, dispatch recording);
//! - `forward`: the schedule (chunk plan, per-step dispatches in one pass, both
//!   directions of a layer per dispatch where `stacked` says so) — it uses the
//!   kernels, never the reverse; `lstm`: [`GpuLstm`], the public model on top;
//!   `gru`: [`GpuGru`], a GRU run by the same schedule (its weights in the LSTM's slots);
//!   `lstmp`: [`GpuLstmp`], an LSTM with a projection run as LSTMs over `o ⊙ tanh c`
//!   (`lstmp_fold`: the folded weights and the chain rule back);
//! - `backward`: BPTT recording and [`GpuLstm::forward_backward`];
//! - `stream`: [`GpuStream`], a stateful stream with its state resident on the GPU;
//! - `timer`: pass timestamps for profiling.
//!
//! Training (the classifier, its loop) lives in `crate::train`, the benchmark probes
//! in `crate::bench`: both use this module; it uses neither.

mod adapter;
mod backward;
mod backward_job;
mod buffers;
mod context;
mod dispatch_plan;
mod faults;
mod forward;
mod gru;
mod host_forward;
pub mod kernels;
mod lstm;
mod lstmp;
mod lstmp_fold;
pub(crate) mod pack;
mod plan;
mod stacked;
mod stream;
mod subgroups;
mod timer;
mod train_cache;
mod weights;

pub use adapter::{list_adapters, GpuOptions, LimitsRequest};
pub use buffers::{GpuSequence, GpuState};
pub use context::{CreationCounts, GpuContext};
pub use dispatch_plan::DispatchPlan;
pub use gru::{GpuGru, GpuGruStream};
pub use kernels::lstm_step::StepTiling;
pub use kernels::matmul::input_proj;
pub use lstm::{GpuForwardOutput, GpuLstm};
pub use lstmp::GpuLstmp;
pub use stream::GpuStream;
pub use timer::ForwardProfile;

pub(crate) use backward_job::{BackwardJob, GpuUpstream};
pub(crate) use buffers::{bind_group, new_storage, storage_init, storage_u32, uniform, IndexTable};
pub(crate) use forward::{lens_u32, ForwardJob, RunInputs, Start};
pub(crate) use weights::{GpuWeights, LayerBuffers};

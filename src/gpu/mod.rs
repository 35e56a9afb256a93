//! The GPU path: wgpu context, WGSL kernels, and the host schedule.

mod backward;
mod classifier;
mod context;
mod kernels;
mod linear;
mod model;
mod ops;
mod optimizer;
mod pack;
pub mod probe;
mod schedule;
mod shaders;
mod timer;

pub use classifier::GpuClassifier;
pub use context::{list_adapters, GpuContext, GpuOptions};
pub use kernels::StepTiling;
pub use linear::input_proj;
pub use model::{ForwardProfile, GpuForwardOutput, GpuLstm, GpuSequence, GpuState};

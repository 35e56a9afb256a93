//! The GPU path: wgpu context, WGSL kernels, and the host schedule.

mod backward;
mod context;
mod kernels;
mod linear;
mod model;
mod ops;
mod pack;
mod schedule;
mod shaders;

pub use context::{list_adapters, GpuContext, GpuOptions};
pub use kernels::StepTiling;
pub use linear::input_proj;
pub use model::{GpuForwardOutput, GpuLstm, GpuSequence, GpuState};

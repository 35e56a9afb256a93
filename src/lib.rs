//! # lstm-wgpu
//!
//! LSTM networks on any GPU through wgpu and WGSL compute shaders, with a CPU
//! reference path (ndarray) that checks every result.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lstm_wgpu::{cpu, ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmWeights};
//! use ndarray::Array3;
//!
//! let config = LstmConfig::new(28, 64).layers(2).bidirectional(true);
//! let weights = LstmWeights::init(&config, 42)?;
//! let x = Array3::from_shape_fn((10, 4, 28), |(t, b, i)| ((t + b * i) as f32).sin());
//! let gpu = GpuLstm::new(Arc::new(GpuContext::new()?), &weights)?;
//! let out = gpu.forward(x.view(), ForwardOptions::default())?;
//! let reference = cpu::forward(&weights, x.view(), ForwardOptions::default())?;
//! assert_eq!(out.y.shape(), &[10, 4, 128]);
//! # let _ = reference;
//! # Ok::<(), lstm_wgpu::LstmError>(())
//! ```

pub mod config;
pub mod cpu;
pub mod error;
pub mod gpu;
pub mod sequence;
pub mod weights;

pub use config::{LstmConfig, Peephole};
pub use error::{LstmError, Result};
pub use gpu::{
    GpuContext, GpuForwardOutput, GpuLstm, GpuOptions, GpuSequence, GpuState, StepTiling,
};
pub use sequence::{ForwardOptions, LstmOutput, LstmState};
pub use weights::{LayerWeights, LstmWeights, PeepholeWeights};

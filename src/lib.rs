//! # lstm-wgpu
//!
//! LSTM networks on any GPU through wgpu and WGSL compute shaders, with a CPU
//! reference path (ndarray) that checks every result.
//!
//! See the README for the quick start, the math and a library example.
#![doc = include_str!("../README.md")]

pub mod apps;
pub mod bench;
pub mod config;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod gru;
pub mod interop;
pub mod lstmp;
#[cfg(feature = "plot")]
pub mod plot;
pub mod sequence;
pub mod train;
pub mod weights;

pub use config::{LstmConfig, Peephole};
pub use error::{LstmError, Result};
pub use gpu::{
    GpuContext, GpuForwardOutput, GpuGru, GpuGruStream, GpuLstm, GpuLstmp, GpuOptions, GpuSequence,
    GpuState, GpuStream, StepTiling,
};
pub use gru::{GruConfig, GruLayerWeights, GruOptions, GruOutput, GruWeights};
pub use lstmp::{LstmpConfig, LstmpLayerWeights, LstmpOutput, LstmpWeights};
pub use sequence::{ForwardOptions, LstmOutput, LstmState};
pub use train::GpuClassifier;
pub use weights::{LayerWeights, LstmWeights, PeepholeWeights};

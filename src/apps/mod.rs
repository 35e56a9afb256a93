//! What the seed article says LSTMs are for, beyond classification, on the bundled
//! MNIST digits — as library calls the `generate` and `inspect` commands only wrap:
//!
//! - [`generate`](mod@generate): a class-conditional generative LSTM that draws a digit one
//!   image row per time step (per-pixel sigmoid cross-entropy, Adam, BPTT through this
//!   crate's backward), its sampling, completion of half digits, and the quality checks;
//! - [`record_gates`](mod@record_gates): the per-step gate activations, cell and hidden
//!   states of any forward, on the CPU path and on the GPU;
//! - [`inspect`](mod@inspect): what a trained classifier does inside — unit ordering,
//!   class selectivity, gradient × input attribution;
//! - `render` (feature `plot`): the PNGs (digit grids, completions, gate heatmaps).

pub mod generate;
pub mod inspect;
#[cfg(feature = "plot")]
pub mod inspect_figure;
pub mod record_gates;
#[cfg(feature = "plot")]
pub mod render;

pub use record_gates::{record_gates, record_gates_gpu, GateRecord, GateTrace};

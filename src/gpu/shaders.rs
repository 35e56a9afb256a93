//! Every WGSL source of the crate, in one place.

pub(crate) const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
pub(crate) const LSTM_STEP: &str = include_str!("../../shaders/lstm_step.wgsl");
pub(crate) const PROBE_EMPTY: &str = include_str!("../../shaders/probe_empty.wgsl");

//! Every WGSL source of the crate, in one place.

pub(crate) const INPUT_PROJ: &str = include_str!("../../shaders/input_proj.wgsl");
pub(crate) const LSTM_STEP: &str = include_str!("../../shaders/lstm_step.wgsl");
pub(crate) const PROBE_EMPTY: &str = include_str!("../../shaders/probe_empty.wgsl");

//! Every WGSL source of the crate, in one place.

pub(crate) const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
pub(crate) const LSTM_STEP: &str = include_str!("../../shaders/lstm_step.wgsl");
pub(crate) const PROBE_EMPTY: &str = include_str!("../../shaders/probe_empty.wgsl");
pub(crate) const LSTM_STEP_BACKWARD: &str = include_str!("../../shaders/lstm_step_backward.wgsl");
pub(crate) const LSTM_PARAM_GRADS: &str = include_str!("../../shaders/lstm_param_grads.wgsl");
pub(crate) const SOFTMAX_XENT: &str = include_str!("../../shaders/softmax_xent.wgsl");
pub(crate) const OPTIMIZER: &str = include_str!("../../shaders/optimizer.wgsl");

//! Every WGSL module the crate compiles, assembled from `shaders/` at build time.

/// Every WGSL source of the crate, in one place (`probe_empty` serves the benchmark).
pub(crate) const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
/// A step kernel's module, its parts in order: the shared activations, for a forward
/// step the recurrent weights' storage (`weights_f32` or `weights_f16`), the cell's
/// pointwise half, and the recurrent product every cell shares.
macro_rules! step_module {
    ($($part:literal),+) => {
        concat!(
            include_str!("../../../shaders/activations.wgsl"),
            $(include_str!(concat!("../../../shaders/", $part, ".wgsl"))),+
        )
    };
}
pub(crate) const LSTM_STEP: &str = step_module!("weights_f32", "lstm_step", "recurrent_step");
/// `lstm_step` reading f16 weights (inference; `GpuLstm::new_f16`).
pub(crate) const LSTM_STEP_F16: &str = step_module!("weights_f16", "lstm_step", "recurrent_step");
pub(crate) const GRU_STEP: &str = step_module!("weights_f32", "gru_step", "recurrent_step");
pub(crate) const GRU_RESET_BEFORE_STEP: &str =
    step_module!("weights_f32", "gru_reset_before_step", "recurrent_step");
pub(crate) const LSTM_STEP_BACKWARD: &str =
    step_module!("lstm_step_backward", "recurrent_step_backward");
pub(crate) const GRU_STEP_BACKWARD: &str =
    step_module!("gru_step_backward", "recurrent_step_backward");
pub(crate) const GRU_RESET_BEFORE_STEP_BACKWARD: &str =
    step_module!("gru_reset_before_step_backward", "recurrent_step_backward");
pub(crate) const LSTM_PARAM_GRADS: &str = include_str!("../../../shaders/lstm_param_grads.wgsl");
pub(crate) const SOFTMAX_XENT: &str = include_str!("../../../shaders/softmax_xent.wgsl");
pub(crate) const OPTIMIZER_UPDATE: &str = include_str!("../../../shaders/optimizer_update.wgsl");
pub(crate) const PROBE_EMPTY: &str = include_str!("../../../shaders/probe_empty.wgsl");

/// `(stem, source)` of every shader: the portability test translates each.
pub const SHADERS: [(&str, &str); 12] = [
    ("matmul", MATMUL),
    ("lstm_step", LSTM_STEP),
    ("lstm_step_f16", LSTM_STEP_F16),
    ("gru_step", GRU_STEP),
    ("lstm_step_backward", LSTM_STEP_BACKWARD),
    ("gru_step_backward", GRU_STEP_BACKWARD),
    ("gru_reset_before_step", GRU_RESET_BEFORE_STEP),
    (
        "gru_reset_before_step_backward",
        GRU_RESET_BEFORE_STEP_BACKWARD,
    ),
    ("lstm_param_grads", LSTM_PARAM_GRADS),
    ("softmax_xent", SOFTMAX_XENT),
    ("optimizer_update", OPTIMIZER_UPDATE),
    ("probe_empty", PROBE_EMPTY),
];

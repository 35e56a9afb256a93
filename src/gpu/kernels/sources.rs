//! Every WGSL module the crate compiles, assembled from `shaders/` at build time.

use std::fmt::Write;

macro_rules! shader {
    ($stem:literal) => {
        include_str!(concat!("../../../shaders/", $stem, ".wgsl"))
    };
}

/// Every WGSL source of the crate, in one place (`probe_empty` serves the benchmark).
pub(crate) const MATMUL: &str = concat!(shader!("matmul_operands_f32"), shader!("matmul"));

/// The module of `matmul_quads.wgsl`'s three forms (with `matmul.wgsl`'s `store`).
pub(crate) fn matmul_quads_module() -> String {
    let parts = [
        shader!("matmul_operands_f32x4"),
        shader!("matmul"),
        shader!("matmul_quads"),
    ];
    parts.concat() + &super::matmul_quads::entry_points()
}
/// A forward step kernel's parts; its module is, in order, the shared activations, the
/// recurrent weights' storage, the state's, the cell's pointwise half, the directions'
/// blocks (`directions.wgsl`) and the recurrent product every cell shares
/// (`recurrent_step.wgsl`, four forms), and for `step_quads`
/// that form's helpers and its entry point, unrolled for a row count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepSource {
    pub stem: &'static str,
    cell: &'static str,
    /// `weights_f16.wgsl` instead of `weights_f32.wgsl` / `weights_f32x4.wgsl`.
    f16: bool,
}

impl StepSource {
    /// The module of the four forms (`step_gemv`, `step_tiled`, `step_units`, `step_rows`),
    /// `step_gemv` summing `shuffle_lanes` lanes by subgroup shuffles (1: none).
    pub fn module(&self, shuffle_lanes: u32) -> String {
        let weights = match self.f16 {
            true => shader!("weights_f16"),
            false => shader!("weights_f32"),
        };
        self.assemble(weights, shader!("state_f32"), &lanes_part(shuffle_lanes))
    }

    /// The module of `step_quads` for `rows` batch rows per invocation (H % 4 == 0).
    pub fn quads_module(&self, rows: u32) -> String {
        let weights = match self.f16 {
            true => shader!("weights_f16"),
            false => shader!("weights_f32x4"),
        };
        // step_quads never sums lanes: its module keeps the portable part.
        let mut src = self.assemble(weights, shader!("state_f32x4"), &lanes_part(1));
        src.push_str(shader!("step_quads"));
        src.push_str(&super::step_quads::entry_point(rows));
        src
    }

    fn assemble(&self, weights: &str, state: &str, lanes: &str) -> String {
        let mut src = String::new();
        for part in [
            shader!("activations"),
            weights,
            state,
            lanes,
            self.cell,
            shader!("directions"),
            shader!("recurrent_step"),
        ] {
            let _ = writeln!(src, "{part}");
        }
        src
    }
}

/// `lanes_sum`'s shuffles: `lanes_portable.wgsl` for 1 lane (none), else
/// `lanes_subgroup.wgsl` behind the constant it reads.
fn lanes_part(shuffle_lanes: u32) -> String {
    match shuffle_lanes {
        0 | 1 => shader!("lanes_portable").to_string(),
        n => format!(
            "const SHUFFLE_BELOW: u32 = {n}u;\n{}",
            shader!("lanes_subgroup")
        ),
    }
}

pub(crate) const LSTM_STEP: StepSource = StepSource {
    stem: "lstm_step",
    cell: shader!("lstm_step"),
    f16: false,
};
/// `lstm_step` reading f16 weights (inference; `GpuLstm::new_f16`).
pub(crate) const LSTM_STEP_F16: StepSource = StepSource {
    stem: "lstm_step_f16",
    cell: shader!("lstm_step"),
    f16: true,
};
pub(crate) const GRU_STEP: StepSource = StepSource {
    stem: "gru_step",
    cell: shader!("gru_step"),
    f16: false,
};
pub(crate) const GRU_RESET_BEFORE_STEP: StepSource = StepSource {
    stem: "gru_reset_before_step",
    cell: shader!("gru_reset_before_step"),
    f16: false,
};
/// A backward step kernel's parts; its module is the shared activations, the recurrent
/// weights' storage, the cell's pointwise half, the directions' blocks
/// (`directions.wgsl`) and the product every cell shares (`recurrent_step_backward.wgsl`), and for `step_backward_quads` that form's helpers
/// and its entry point, unrolled for a row count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackwardSource {
    pub stem: &'static str,
    cell: &'static str,
}

impl BackwardSource {
    pub fn module(&self) -> String {
        self.assemble(shader!("weights_f32"))
    }

    /// The module of `step_backward_quads` for `rows` batch rows per invocation.
    pub fn quads_module(&self, rows: u32) -> String {
        let mut src = self.assemble(shader!("weights_f32x4"));
        src.push_str(shader!("step_backward_quads"));
        src.push_str(&super::step_backward_quads::entry_point(rows));
        src
    }

    fn assemble(&self, weights: &str) -> String {
        let parts = [
            shader!("activations"),
            weights,
            self.cell,
            shader!("directions"),
            shader!("recurrent_step_backward"),
        ];
        parts.concat()
    }
}

pub(crate) const LSTM_STEP_BACKWARD: BackwardSource = BackwardSource {
    stem: "lstm_step_backward",
    cell: shader!("lstm_step_backward"),
};
pub(crate) const GRU_STEP_BACKWARD: BackwardSource = BackwardSource {
    stem: "gru_step_backward",
    cell: shader!("gru_step_backward"),
};
pub(crate) const GRU_RESET_BEFORE_STEP_BACKWARD: BackwardSource = BackwardSource {
    stem: "gru_reset_before_step_backward",
    cell: shader!("gru_reset_before_step_backward"),
};
pub(crate) const LSTM_PARAM_GRADS: &str = shader!("lstm_param_grads");
pub(crate) const SOFTMAX_XENT: &str = shader!("softmax_xent");
pub(crate) const OPTIMIZER_UPDATE: &str = shader!("optimizer_update");
pub(crate) const PROBE_EMPTY: &str = shader!("probe_empty");
pub(crate) const PROBE_SUBGROUPS: &str = shader!("probe_subgroups");

/// `(stem, source)` of every module the crate compiles, the written-out forms at every
/// row count they are generated for, the step modules with subgroup shuffles too (stems
/// `lanes_subgroup*`): the portability test translates each.
pub fn shaders() -> Vec<(&'static str, String)> {
    let steps = [LSTM_STEP, LSTM_STEP_F16, GRU_STEP, GRU_RESET_BEFORE_STEP];
    let backward = [
        LSTM_STEP_BACKWARD,
        GRU_STEP_BACKWARD,
        GRU_RESET_BEFORE_STEP_BACKWARD,
    ];
    let fixed = [
        ("matmul", MATMUL),
        ("lstm_param_grads", LSTM_PARAM_GRADS),
        ("softmax_xent", SOFTMAX_XENT),
        ("optimizer_update", OPTIMIZER_UPDATE),
        ("probe_empty", PROBE_EMPTY),
    ];
    let mut all: Vec<(&'static str, String)> = fixed.map(|(s, src)| (s, src.to_string())).into();
    all.push(("matmul_quads", matmul_quads_module()));
    all.extend(steps.iter().map(|s| (s.stem, s.module(1))));
    // Shuffles below 4 lanes (Metal, some Intel), 8 (lavapipe), 16 and 32 (NVIDIA, AMD:
    // no workgroup memory at all).
    for lanes in [4, 8, 16, 32] {
        all.extend(steps.iter().map(|s| match s.f16 {
            true => ("lanes_subgroup_f16", s.module(lanes)),
            false => ("lanes_subgroup", s.module(lanes)),
        }));
    }
    all.push(("probe_subgroups", PROBE_SUBGROUPS.to_string()));
    all.extend(backward.iter().map(|s| (s.stem, s.module())));
    for rows in super::step_quads::QUAD_ROWS {
        // The f16 module's stem ends in `_f16` (its capability, and its file).
        for s in steps {
            let stem = if s.stem.ends_with("_f16") {
                "step_quads_f16"
            } else {
                "step_quads"
            };
            all.push((stem, s.quads_module(rows)));
        }
        all.extend(
            backward
                .iter()
                .map(|s| ("step_backward_quads", s.quads_module(rows))),
        );
    }
    all
}

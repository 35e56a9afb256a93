//! The five tilings (forms) of the step kernels (`recurrent_step.wgsl`'s four and
//! `step_quads.wgsl`) and their tiles: which one runs is picked by the batch and hidden
//! size and by whether the adapter is a CPU running the shaders.

/// Hidden units × batch rows of one `step_gemv` workgroup.
pub(crate) const GEMV_TILE: (u32, u32) = (2, 4);
/// Hidden units × batch rows of one `step_tiled` workgroup.
pub(crate) const TILED_TILE: (u32, u32) = (16, 16);
/// Hidden units × batch rows of one `step_units` workgroup.
pub(crate) const UNITS_TILE: (u32, u32) = (32, 4);
/// Hidden units × batch rows of one `step_rows` workgroup.
pub(crate) const ROWS_TILE: (u32, u32) = (32, 8);

/// Invocations per workgroup of each form (the `@workgroup_size` in `lstm_step.wgsl`).
pub(crate) fn workgroup_invocations(tiling: StepTiling) -> u32 {
    match tiling {
        StepTiling::Gemv | StepTiling::Auto | StepTiling::Tiled => 64,
        StepTiling::Units | StepTiling::Rows | StepTiling::Quads => 8,
    }
}

/// Which tiling of the step kernel to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepTiling {
    /// `Gemv` up to [`StepTiling::GEMV_MAX_BATCH`], `Tiled` above; on a software
    /// adapter (a CPU running the shaders) `Quads` when 4 | H, else `Units` up to
    /// `GEMV_MAX_BATCH` and `Rows` above.
    #[default]
    Auto,
    /// Split-K matrix-vector product: keeps the GPU busy at B = 1.
    Gemv,
    /// Register-blocked tile over batch × units: large batches.
    Tiled,
    /// One hidden unit per invocation, batch rows uniform, no barriers: small batches
    /// on software adapters.
    Units,
    /// One batch row per invocation, units uniform, no barriers: large batches on
    /// software adapters.
    Rows,
    /// `Rows`' sums written out (unrolled by the host) with vec4 loads, for software
    /// adapters when H % 4 == 0; falls back to `Units`/`Rows` otherwise.
    Quads,
}

impl StepTiling {
    pub const GEMV_MAX_BATCH: usize = 8;

    /// Every tiling a caller can pick (tests run each).
    pub const ALL: [StepTiling; 5] = [
        StepTiling::Gemv,
        StepTiling::Tiled,
        StepTiling::Units,
        StepTiling::Rows,
        StepTiling::Quads,
    ];

    /// The tiling `Auto` stands for at this batch and hidden size, with the
    /// software-adapter kernel forms or not ([`crate::GpuContext::software_kernels`]) and
    /// the written-out ones among them or not ([`crate::GpuContext::quad_forms`]);
    /// `Quads` where its vec4 loads do not fit H falls back to `Units`/`Rows`.
    pub(crate) fn resolve_for(
        self,
        (batch, hidden): (usize, usize),
        (software, quad_forms): (bool, bool),
    ) -> StepTiling {
        let small = batch <= Self::GEMV_MAX_BATCH;
        let fits = super::step_quads::quads_fit(hidden);
        match (self, software) {
            (StepTiling::Auto, false) if small => StepTiling::Gemv,
            (StepTiling::Auto, false) => StepTiling::Tiled,
            (StepTiling::Quads, _) if fits => StepTiling::Quads,
            (StepTiling::Auto, true) if fits && quad_forms => StepTiling::Quads,
            (StepTiling::Auto | StepTiling::Quads, _) if small => StepTiling::Units,
            (StepTiling::Auto | StepTiling::Quads, _) => StepTiling::Rows,
            (t, _) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StepTiling::{self, *};

    /// What `Auto` and `Quads` resolve to: the written-out form exactly on software
    /// adapters with 4 | H (unless turned off), the plain forms otherwise.
    #[test]
    fn resolve_for_picks_the_form_the_shape_allows() {
        let cases = [
            // ((batch, hidden), (software, quad forms), tiling, resolved)
            ((1, 8), (true, true), Auto, Quads),
            ((64, 256), (true, true), Auto, Quads),
            ((1, 7), (true, true), Auto, Units),
            ((64, 33), (true, true), Auto, Rows),
            ((64, 8), (true, false), Auto, Rows),
            ((1, 8), (false, true), Auto, Gemv),
            ((64, 8), (false, true), Auto, Tiled),
            ((1, 7), (false, true), Quads, Units),
            ((64, 8), (false, false), Quads, Quads),
            ((64, 8), (true, true), Rows, Rows),
        ];
        for (shape, forms, tiling, want) in cases {
            let got = StepTiling::resolve_for(tiling, shape, forms);
            assert_eq!(got, want, "{tiling:?} at {shape:?} with {forms:?}");
        }
    }
}

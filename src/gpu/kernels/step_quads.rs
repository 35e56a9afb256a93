//! `shaders/step_quads.wgsl`: the step's form for software adapters when H % 4 == 0,
//! its entry point written out here for R batch rows per invocation (WGSL cannot unroll;
//! see the shader's header for why unrolling is the point). Compiled per cell and row
//! count on first use. CPU twin: the cell's step ([`crate::cpu::lstm_step()`]); the
//! kernel test also holds it bit for bit to `step_rows`.

use super::wgsl_gen::Wgsl;

/// Hidden units per invocation (a multiple of 4: each invocation then owns whole vec4s
/// of the state it writes) and invocations per workgroup.
pub(crate) const QUAD_UNITS: u32 = 4;
pub(crate) const QUAD_LANES: u32 = 8;
/// The row counts compiled: the batch picks the smallest that holds it (16 above).
/// 32 rows beat 16 by 17–19 % a step at B ≥ 64 on Vulkan, but on the GL backend their
/// modules compile for so long that wgpu's EGL context lock (6 s) timed out in a test
/// thread beside one (BENCHMARKS.md §18): not worth a panic in someone's program.
pub(crate) const QUAD_ROWS: [u32; 4] = [1, 4, 8, 16];

/// Which of [`QUAD_ROWS`] a batch of `batch` takes.
pub(crate) fn quad_slot(batch: usize) -> usize {
    let fits = QUAD_ROWS.iter().position(|&r| r as usize >= batch);
    fits.unwrap_or(QUAD_ROWS.len() - 1)
}

/// The rows per invocation for a batch of `batch`.
pub(crate) fn quad_rows(batch: usize) -> u32 {
    QUAD_ROWS[quad_slot(batch)]
}

/// Hidden units × batch rows of one workgroup.
pub(crate) fn quad_tile(batch: usize) -> (u32, u32) {
    (QUAD_UNITS * QUAD_LANES, quad_rows(batch))
}

/// Whether the form applies: its vec4 loads need 4 | H (then 4 | K and every row start).
pub(crate) fn quads_fit(hidden: usize) -> bool {
    hidden.is_multiple_of(4)
}

/// The entry point `step_quads` for `rows` batch rows per invocation.
pub(crate) fn entry_point(rows: u32) -> String {
    let mut w = Wgsl::default();
    w.tile_entry("step_quads", QUAD_LANES, ("j0", QUAD_UNITS), ("b0", rows));
    w.line("    enter_direction(wg);");
    for u in 0..QUAD_UNITS {
        w.line(format!("    let w_row{u} = quad_weight_row(j0 + {u}u);"));
    }
    let mut acc = Vec::new();
    for r in 0..rows {
        w.line(format!("    let s_row{r} = quad_state_row(b0 + {r}u);"));
        for u in 0..QUAD_UNITS {
            w.line(format!("    var a{r}_{u} = vec4(0.0);"));
            acc.push(format!("a{r}_{u}"));
        }
    }
    w.line("    for (var k = 0u; k < k_end(); k += 4u) {");
    w.line("        let kk = quad_k(k);");
    w.outer_products(
        (QUAD_UNITS, |u| {
            format!("let w{u} = quad_weights(w_row{u}, k)")
        }),
        (rows, |r| format!("let s{r} = state_get4(s_row{r} + kk)")),
        |r, u| format!("a{r}_{u} = quad_fma(w{u}, s{r}, a{r}_{u})"),
    );
    w.line("    }");
    let finish = format!("quad_finish(b0 + i / {QUAD_UNITS}u, j0 + i % {QUAD_UNITS}u, acc[i]);");
    w.spill(&[("acc", "vec4<f32>", acc)], rows * QUAD_UNITS, &[finish]);
    w.finish()
}

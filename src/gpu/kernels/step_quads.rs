//! `shaders/step_quads.wgsl`: the step's form for software adapters when H % 4 == 0,
//! its entry point written out here for R batch rows per invocation (WGSL cannot unroll;
//! see the shader's header for why unrolling is the point). Compiled per cell and row
//! count on first use. CPU twin: the cell's step ([`crate::cpu::lstm_step()`]); the
//! kernel test also holds it bit for bit to `step_rows`.

use std::fmt::Write;

/// Hidden units per invocation and invocations per workgroup.
pub(crate) const QUAD_UNITS: u32 = 4;
pub(crate) const QUAD_LANES: u32 = 8;
/// The row counts compiled: the batch picks the smallest that holds it (16 above).
pub(crate) const QUAD_ROWS: [u32; 4] = [1, 4, 8, 16];

/// The rows per invocation for a batch of `batch`.
pub(crate) fn quad_rows(batch: usize) -> u32 {
    let fits = QUAD_ROWS.iter().find(|&&r| r as usize >= batch);
    *fits.unwrap_or(&QUAD_ROWS[QUAD_ROWS.len() - 1])
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
    let units = 0..QUAD_UNITS;
    let mut s = String::new();
    let mut line = |text: String| {
        let _ = writeln!(s, "{text}");
    };
    line(format!("@compute @workgroup_size({QUAD_LANES})"));
    line("fn step_quads(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {".into());
    line(format!(
        "    let j0 = (wg.x * {QUAD_LANES}u + li) * {QUAD_UNITS}u;"
    ));
    line(format!("    let b0 = wg.y * {rows}u;"));
    for u in units.clone() {
        line(format!("    let w_row{u} = quad_weight_row(j0 + {u}u);"));
    }
    for r in 0..rows {
        line(format!("    let s_row{r} = quad_state_row(b0 + {r}u);"));
        for u in units.clone() {
            line(format!("    var a{r}_{u} = vec4(0.0);"));
        }
    }
    line("    for (var k = 0u; k < p.k_rec; k += 4u) {".into());
    line("        let kk = quad_k(k);".into());
    for u in units.clone() {
        line(format!("        let w{u} = quad_weights(w_row{u}, k);"));
    }
    for r in 0..rows {
        line(format!("        let s{r} = state_get4(s_row{r} + kk);"));
        for u in units.clone() {
            line(format!(
                "        a{r}_{u} = quad_fma(w{u}, s{r}, a{r}_{u});"
            ));
        }
    }
    line("    }".into());
    // One call site of the cell's update (a copy per accumulator would multiply the
    // code the adapter compiles by units × rows; measured slower).
    let n = rows * QUAD_UNITS;
    line(format!("    var acc: array<vec4<f32>, {n}>;"));
    for r in 0..rows {
        for u in units.clone() {
            line(format!("    acc[{}] = a{r}_{u};", r * QUAD_UNITS + u));
        }
    }
    line(format!("    for (var q = 0u; q < {n}u; q++) {{"));
    line(format!(
        "        quad_finish(b0 + q / {QUAD_UNITS}u, j0 + q % {QUAD_UNITS}u, acc[q]);"
    ));
    line("    }".into());
    line("}".into());
    s
}

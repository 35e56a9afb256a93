//! `shaders/step_backward_quads.wgsl`: the backward step's product for software
//! adapters when H % 4 == 0, its entry point written out here for R batch rows (the
//! row counts and their choice are `step_quads`'). CPU twin: the cell's backward step
//! ([`crate::cpu::lstm_step_backward`]); the kernel test also holds it bit for bit to
//! `recurrent_step_backward.wgsl`'s `main_rows`.

use std::fmt::Write;

use super::step_quads::{QUAD_LANES, QUAD_UNITS};

/// The entry point `step_backward_quads` for `rows` batch rows per invocation.
pub(crate) fn entry_point(rows: u32) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        let _ = writeln!(s, "{text}");
    };
    line(format!("@compute @workgroup_size({QUAD_LANES})"));
    line("fn step_backward_quads(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {".into());
    line(format!(
        "    let k0 = (wg.x * {QUAD_LANES}u + li) * {QUAD_UNITS}u;"
    ));
    line(format!("    let b0 = wg.y * {rows}u;"));
    line("    let full = p.peephole == 2u;".into());
    for r in 0..rows {
        line(format!("    var h{r} = vec4(0.0);"));
        line(format!("    var c{r} = vec4(0.0);"));
    }
    line("    if ((step.bits & FIRST) == 0u) {".into());
    line("        for (var j = 0u; j < p.hidden; j++) {".into());
    for g in 0..4 {
        line(format!(
            "            let wh{g} = w_at4(quad_w(4u * j + {g}u, 0u, k0));"
        ));
    }
    for r in 0..rows {
        line(format!(
            "            let d{r} = quad_dz_prev(b0 + {r}u, j);"
        ));
        line(format!(
            "            h{r} = quad_fma4(d{r}, wh0, wh1, wh2, wh3, h{r});"
        ));
    }
    // Only Full peepholes have a c-path product (a uniform branch, as in `main_rows`).
    line("            if (full) {".into());
    for g in 0..4 {
        line(format!(
            "                let wc{g} = w_at4(quad_w(4u * j + {g}u, p.hidden, k0));"
        ));
    }
    for r in 0..rows {
        line(format!(
            "                c{r} = quad_fma4(d{r}, wc0, wc1, wc2, wc3, c{r});"
        ));
    }
    line("            }".into());
    line("        }".into());
    line("    }".into());
    // One call site of the cell's update (see step_quads.rs).
    line(format!("    var rh: array<vec4<f32>, {rows}>;"));
    line(format!("    var rc: array<vec4<f32>, {rows}>;"));
    for r in 0..rows {
        line(format!("    rh[{r}] = h{r};"));
        line(format!("    rc[{r}] = c{r};"));
    }
    line(format!(
        "    for (var i = 0u; i < {}u; i++) {{",
        rows * QUAD_UNITS
    ));
    line(format!("        let r = i / {QUAD_UNITS}u;"));
    line(format!("        let u = i % {QUAD_UNITS}u;"));
    line("        quad_update(b0 + r, k0 + u, rh[r][u], rc[r][u]);".into());
    line("    }".into());
    line("}".into());
    s
}

//! `shaders/step_backward_quads.wgsl`: the backward step's product for software
//! adapters when H % 4 == 0, its entry point written out here for R batch rows (the
//! row counts and their choice are `step_quads`'). CPU twin: the cell's backward step
//! ([`crate::cpu::lstm_step_backward`]); the kernel test also holds it bit for bit to
//! `recurrent_step_backward.wgsl`'s `main_rows`.

use super::step_quads::{QUAD_LANES, QUAD_UNITS};
use super::wgsl_gen::Wgsl;

/// The entry point `step_backward_quads` for `rows` batch rows per invocation.
pub(crate) fn entry_point(rows: u32) -> String {
    let mut w = Wgsl::default();
    w.entry("step_backward_quads", QUAD_LANES);
    w.line(format!(
        "    let k0 = (wg.x * {QUAD_LANES}u + li) * {QUAD_UNITS}u;"
    ));
    w.line(format!("    let b0 = wg.y * {rows}u;"));
    w.line("    let full = p.peephole == 2u;");
    for r in 0..rows {
        w.line(format!("    var h{r} = vec4(0.0);"));
        w.line(format!("    var c{r} = vec4(0.0);"));
    }
    w.line("    if ((step.bits & FIRST) == 0u) {");
    w.line("        for (var j = 0u; j < p.hidden; j++) {");
    for g in 0..4 {
        w.line(format!(
            "            let wh{g} = w_at4(quad_w(4u * j + {g}u, 0u, k0));"
        ));
    }
    for r in 0..rows {
        w.line(format!(
            "            let d{r} = quad_dz_prev(b0 + {r}u, j);"
        ));
        w.line(format!(
            "            h{r} = quad_fma4(d{r}, wh0, wh1, wh2, wh3, h{r});"
        ));
    }
    // Only Full peepholes have a c-path product (a uniform branch, as in `main_rows`).
    w.line("            if (full) {");
    for g in 0..4 {
        w.line(format!(
            "                let wc{g} = w_at4(quad_w(4u * j + {g}u, p.hidden, k0));"
        ));
    }
    for r in 0..rows {
        w.line(format!(
            "                c{r} = quad_fma4(d{r}, wc0, wc1, wc2, wc3, c{r});"
        ));
    }
    w.line("            }");
    w.line("        }");
    w.line("    }");
    let (rh, rc) = (
        (0..rows).map(|r| format!("h{r}")),
        (0..rows).map(|r| format!("c{r}")),
    );
    let arrays = [
        ("rh", "vec4<f32>", rh.collect()),
        ("rc", "vec4<f32>", rc.collect()),
    ];
    let update = format!(
        "quad_update(b0 + i / {QUAD_UNITS}u, k0 + i % {QUAD_UNITS}u, rh[i / {QUAD_UNITS}u][i % {QUAD_UNITS}u], rc[i / {QUAD_UNITS}u][i % {QUAD_UNITS}u]);"
    );
    w.spill(&arrays, rows * QUAD_UNITS, &[update]);
    w.finish()
}

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
    w.tile_entry(
        "step_backward_quads",
        QUAD_LANES,
        ("k0", QUAD_UNITS),
        ("b0", rows),
    );
    w.line("    enter_direction(wg);");
    w.line("    let full = p.peephole == 2u;");
    for r in 0..rows {
        w.line(format!("    var h{r} = vec4(0.0);"));
        w.line(format!("    var c{r} = vec4(0.0);"));
    }
    w.line("    if ((step.bits & FIRST) == 0u) {");
    w.line("        for (var j = 0u; j < p.hidden; j++) {");
    for r in 0..rows {
        w.line(format!(
            "            let d{r} = quad_dz_prev(b0 + {r}u, j);"
        ));
    }
    product(&mut w, "            ", ("wh", "0u", "h"), rows);
    // Only Full peepholes have a c-path product (a uniform branch, as in `main_rows`).
    w.line("            if (full) {");
    product(&mut w, "                ", ("wc", "p.hidden", "c"), rows);
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

/// One block of the product for unit j: its four gate rows of W_rec from column `col` on
/// (named `name0..3`), and each row's `acc{r}` += that row's dz (`d{r}`) times them.
fn product(w: &mut Wgsl, indent: &str, (name, col, acc): (&str, &str, &str), rows: u32) {
    for g in 0..4 {
        w.line(format!(
            "{indent}let {name}{g} = w_at4(quad_w(4u * j + {g}u, {col}, k0));"
        ));
    }
    let weights = format!("{name}0, {name}1, {name}2, {name}3");
    for r in 0..rows {
        w.line(format!(
            "{indent}{acc}{r} = quad_fma4(d{r}, {weights}, {acc}{r});"
        ));
    }
}

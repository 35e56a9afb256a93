//! `shaders/matmul_quads.wgsl`: `matmul.wgsl`'s product for software adapters when both
//! operands run along k (`x·Wᵀ`), its entry point `main_quads` written out here (WGSL
//! cannot unroll; the shader's header says why that is the point). CPU twin:
//! [`crate::cpu::matmul`]; the kernel test also holds it bit for bit to `main_rows`.

use std::fmt::Write;

use super::matmul_params::MatmulParams;

/// Output columns per invocation, invocations per workgroup, output rows per invocation.
pub(crate) const QUAD_COLS: u32 = 8;
pub(crate) const QUAD_LANES: u32 = 8;
pub(crate) const QUAD_ROWS: u32 = 16;

/// Whether `main_quads` computes `p` on these operand buffers: op(a) = a, op(b) = bᵀ,
/// every vec4 load aligned (4 | K, lda, ldb and the offsets; whole vec4 buffers), and
/// its grid within `max_groups` a side (the chunk plan sizes M for `main_rows`' 64 rows
/// a workgroup; past that `main_rows` serves).
pub(crate) fn fits(
    p: &MatmulParams,
    (a, b): (&wgpu::Buffer, &wgpu::Buffer),
    max_groups: u32,
) -> bool {
    let flag = |f: u32| p.flags & f != 0;
    let aligned = [p.k, p.lda, p.ldb, p.a_off, p.b_off]
        .iter()
        .all(|v| v % 4 == 0);
    let whole = a.size() % 16 == 0 && b.size() % 16 == 0;
    let (gx, gy) = grid(p);
    let small = gx <= max_groups && gy <= max_groups;
    !flag(MatmulParams::A_TRANS) && flag(MatmulParams::B_TRANS) && aligned && whole && small
}

/// The grid of `main_quads` for `p`.
pub(crate) fn grid(p: &MatmulParams) -> (u32, u32) {
    (
        p.n.div_ceil(QUAD_COLS * QUAD_LANES),
        p.m.div_ceil(QUAD_ROWS),
    )
}

/// The entry point `main_quads`.
pub(crate) fn entry_point() -> String {
    let (rows, cols) = (0..QUAD_ROWS, 0..QUAD_COLS);
    let mut s = String::new();
    let mut line = |text: String| {
        let _ = writeln!(s, "{text}");
    };
    line(format!("@compute @workgroup_size({QUAD_LANES})"));
    line("fn main_quads(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {".into());
    line(format!(
        "    let n0 = (wg.x * {QUAD_LANES}u + li) * {QUAD_COLS}u;"
    ));
    line(format!("    let m0 = wg.y * {QUAD_ROWS}u;"));
    for q in cols.clone() {
        line(format!("    let b_col{q} = quad_b_col(n0 + {q}u);"));
    }
    for r in rows.clone() {
        line(format!("    let a_row{r} = quad_a_row(m0 + {r}u);"));
        for q in cols.clone() {
            line(format!("    var c{r}_{q} = 0.0;"));
        }
    }
    line("    for (var k = 0u; k < p.k; k += 4u) {".into());
    for q in cols.clone() {
        line(format!("        let b{q} = b_at4(b_col{q} + k);"));
    }
    for r in rows.clone() {
        line(format!("        let a{r} = a_at4(a_row{r} + k);"));
        for q in cols.clone() {
            line(format!(
                "        c{r}_{q} = quad_dot(a{r}, b{q}, c{r}_{q});"
            ));
        }
    }
    line("    }".into());
    // One call site of `store` (see step_quads.rs: a copy per accumulator compiles slower).
    let n = QUAD_ROWS * QUAD_COLS;
    line(format!("    var acc: array<f32, {n}>;"));
    for r in rows {
        for q in cols.clone() {
            line(format!("    acc[{}] = c{r}_{q};", r * QUAD_COLS + q));
        }
    }
    line(format!("    for (var i = 0u; i < {n}u; i++) {{"));
    line(format!(
        "        quad_store(m0 + i / {QUAD_COLS}u, n0 + i % {QUAD_COLS}u, acc[i]);"
    ));
    line("    }".into());
    line("}".into());
    s
}

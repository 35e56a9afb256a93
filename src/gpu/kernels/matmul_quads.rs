//! `shaders/matmul_quads.wgsl`: `matmul.wgsl`'s product for software adapters in three
//! written-out forms, their entry points generated here (WGSL cannot unroll; the
//! shader's header says why that is the point): `main_quads` when both operands run
//! along k (`x·Wᵀ`, the input projection), `main_quads_tn` when they run along the
//! output's rows and columns (`aᵀ·b`, the weight gradients), `main_quads_nn` when a runs
//! along k and b along the columns (`a·b`, the input gradients). CPU twin:
//! [`crate::cpu::matmul`]; the kernel test also holds each bit for bit to `main_rows`.

use std::fmt::Write;

use super::matmul_params::MatmulParams;

/// Output columns per invocation, invocations per workgroup, output rows per invocation.
pub(crate) const QUAD_COLS: u32 = 8;
pub(crate) const QUAD_LANES: u32 = 8;
pub(crate) const QUAD_ROWS: u32 = 16;

/// The three written-out forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuadForm {
    /// `main_quads`: op(a) = a, op(b) = bᵀ; four k per load.
    AlongK,
    /// `main_quads_tn`: op(a) = aᵀ, op(b) = b; four rows or columns per load, k by k.
    AlongRows,
    /// `main_quads_nn`: op(a) = a, op(b) = b; four k of a row, four columns of b.
    AlongKCols,
}

impl QuadForm {
    pub const ALL: [QuadForm; 3] = [QuadForm::AlongK, QuadForm::AlongRows, QuadForm::AlongKCols];

    pub fn entry(self) -> &'static str {
        match self {
            QuadForm::AlongK => "main_quads",
            QuadForm::AlongRows => "main_quads_tn",
            QuadForm::AlongKCols => "main_quads_nn",
        }
    }
}

/// The form that computes `p` on these operand buffers, if one does: the transposes
/// of one of the forms, every vec4 load aligned (4 | the dimension loaded along, lda,
/// ldb and the offsets; whole vec4 buffers), and the grid within `max_groups` a side
/// (the chunk plan sizes M for `main_rows`' 64 rows a workgroup; past that
/// `main_rows` serves).
pub(crate) fn form_for(
    p: &MatmulParams,
    (a, b): (&wgpu::Buffer, &wgpu::Buffer),
    max_groups: u32,
) -> Option<QuadForm> {
    let flag = |f: u32| p.flags & f != 0;
    let four = |v: &[u32]| v.iter().all(|x| x % 4 == 0);
    let whole = a.size() % 16 == 0 && b.size() % 16 == 0;
    let (gx, gy) = grid(p);
    let fits = whole && gx <= max_groups && gy <= max_groups;
    let form = match (flag(MatmulParams::A_TRANS), flag(MatmulParams::B_TRANS)) {
        (false, true) => (QuadForm::AlongK, p.k),
        (true, false) => (QuadForm::AlongRows, p.m | p.n),
        (false, false) => (QuadForm::AlongKCols, p.k | p.n),
        (true, true) => return None,
    };
    (fits && four(&[form.1, p.lda, p.ldb, p.a_off, p.b_off])).then_some(form.0)
}

/// The grid of both forms for `p`.
pub(crate) fn grid(p: &MatmulParams) -> (u32, u32) {
    (
        p.n.div_ceil(QUAD_COLS * QUAD_LANES),
        p.m.div_ceil(QUAD_ROWS),
    )
}

/// The three entry points.
pub(crate) fn entry_points() -> String {
    let mut s = String::new();
    for form in QuadForm::ALL {
        let mut line = |text: String| {
            let _ = writeln!(s, "{text}");
        };
        line(format!("@compute @workgroup_size({QUAD_LANES})"));
        line(format!("fn {}(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {{", form.entry()));
        line(format!(
            "    let n0 = (wg.x * {QUAD_LANES}u + li) * {QUAD_COLS}u;"
        ));
        line(format!("    let m0 = wg.y * {QUAD_ROWS}u;"));
        for r in 0..QUAD_ROWS {
            for q in 0..QUAD_COLS {
                line(format!("    var c{r}_{q} = 0.0;"));
            }
        }
        match form {
            QuadForm::AlongK => along_k(&mut line),
            QuadForm::AlongRows => along_rows(&mut line),
            QuadForm::AlongKCols => along_k_cols(&mut line),
        }
        epilogue(&mut line);
    }
    s
}

/// Four k per step: a vec4 of each output row's op(a) and each column's op(b).
fn along_k(line: &mut impl FnMut(String)) {
    for q in 0..QUAD_COLS {
        line(format!("    let b_col{q} = quad_b_col(n0 + {q}u);"));
    }
    for r in 0..QUAD_ROWS {
        line(format!("    let a_row{r} = quad_a_row(m0 + {r}u);"));
    }
    line("    for (var k = 0u; k < p.k; k += 4u) {".into());
    for q in 0..QUAD_COLS {
        line(format!("        let b{q} = b_at4(b_col{q} + k);"));
    }
    for r in 0..QUAD_ROWS {
        line(format!("        let a{r} = a_at4(a_row{r} + k);"));
        for q in 0..QUAD_COLS {
            line(format!(
                "        c{r}_{q} = quad_dot(a{r}, b{q}, c{r}_{q});"
            ));
        }
    }
    line("    }".into());
}

/// One k per step: vec4s of four output rows of op(a)'s column k and four columns of
/// op(b)'s row k.
fn along_rows(line: &mut impl FnMut(String)) {
    const LANE: [char; 4] = ['x', 'y', 'z', 'w'];
    line("    for (var k = 0u; k < p.k; k++) {".into());
    for i in 0..QUAD_ROWS / 4 {
        line(format!(
            "        let a{i} = a_at4(quad_a_rows(k, m0 + {}u));",
            4 * i
        ));
    }
    for j in 0..QUAD_COLS / 4 {
        line(format!(
            "        let b{j} = b_at4(quad_b_cols(k, n0 + {}u));",
            4 * j
        ));
    }
    for r in 0..QUAD_ROWS {
        for q in 0..QUAD_COLS {
            let (a, b) = ((r / 4, LANE[r as usize % 4]), (q / 4, LANE[q as usize % 4]));
            line(format!(
                "        c{r}_{q} = fma(a{}.{}, b{}.{}, c{r}_{q});",
                a.0, a.1, b.0, b.1
            ));
        }
    }
    line("    }".into());
}

/// Four k per step: a vec4 of each output row's op(a), and for each of the four k a
/// vec4 of four columns of op(b).
fn along_k_cols(line: &mut impl FnMut(String)) {
    const LANE: [char; 4] = ['x', 'y', 'z', 'w'];
    for r in 0..QUAD_ROWS {
        line(format!("    let a_row{r} = quad_a_row(m0 + {r}u);"));
    }
    line("    for (var k = 0u; k < p.k; k += 4u) {".into());
    for i in 0..4 {
        for j in 0..QUAD_COLS / 4 {
            let n = 4 * j;
            line(format!(
                "        let b{i}_{j} = b_at4(quad_b_cols(k + {i}u, n0 + {n}u));"
            ));
        }
    }
    for r in 0..QUAD_ROWS {
        line(format!("        let a{r} = a_at4(a_row{r} + k);"));
        for q in 0..QUAD_COLS {
            for (i, lane) in LANE.iter().enumerate() {
                let (j, col) = (q / 4, LANE[q as usize % 4]);
                line(format!(
                    "        c{r}_{q} = fma(a{r}.{lane}, b{i}_{j}.{col}, c{r}_{q});"
                ));
            }
        }
    }
    line("    }".into());
}

/// One call site of `store` (see step_quads.rs: a copy per accumulator compiles slower).
fn epilogue(line: &mut impl FnMut(String)) {
    let n = QUAD_ROWS * QUAD_COLS;
    line(format!("    var acc: array<f32, {n}>;"));
    for r in 0..QUAD_ROWS {
        for q in 0..QUAD_COLS {
            line(format!("    acc[{}] = c{r}_{q};", r * QUAD_COLS + q));
        }
    }
    line(format!("    for (var i = 0u; i < {n}u; i++) {{"));
    line(format!(
        "        quad_store(m0 + i / {QUAD_COLS}u, n0 + i % {QUAD_COLS}u, acc[i]);"
    ));
    line("    }".into());
    line("}".into());
}

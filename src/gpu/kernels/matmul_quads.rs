//! `shaders/matmul_quads.wgsl`: `matmul.wgsl`'s product for software adapters in three
//! written-out forms, their entry points generated here (WGSL cannot unroll; the
//! shader's header says why that is the point): `main_quads` when both operands run
//! along k (`x·Wᵀ`, the input projection), `main_quads_tn` when they run along the
//! output's rows and columns (`aᵀ·b`, the weight gradients), `main_quads_nn` when a runs
//! along k and b along the columns (`a·b`, the input gradients). CPU twin:
//! [`crate::cpu::matmul`]; the kernel test also holds each bit for bit to `main_rows`.

use super::matmul_params::MatmulParams;
use super::wgsl_gen::{Wgsl, LANE};

/// Output columns per invocation, invocations per workgroup, output rows per invocation.
pub(crate) const GEMM_COLS: u32 = 8;
pub(crate) const GEMM_LANES: u32 = 8;
pub(crate) const GEMM_ROWS: u32 = 16;

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

/// The form that computes `p` on operand buffers of `sizes` bytes, if one does: the
/// transposes of one of the forms, every vec4 load aligned (4 | the dimensions loaded
/// along, lda, ldb and the offsets; whole vec4 buffers), and the grid within
/// `max_groups` a side (the chunk plan sizes M for `main_rows`' 64 rows a workgroup;
/// past that `main_rows` serves).
pub(crate) fn form_for(p: &MatmulParams, sizes: (u64, u64), max_groups: u32) -> Option<QuadForm> {
    let flag = |f: u32| p.flags & f != 0;
    let four = |v: &[u32]| v.iter().all(|x| x % 4 == 0);
    let whole = sizes.0.is_multiple_of(16) && sizes.1.is_multiple_of(16);
    let (gx, gy) = grid(p);
    let fits = whole && gx <= max_groups && gy <= max_groups;
    // The dimensions each form loads along, OR-ed: 4 divides all of them exactly when it
    // divides the OR.
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
        p.n.div_ceil(GEMM_COLS * GEMM_LANES),
        p.m.div_ceil(GEMM_ROWS),
    )
}

/// The three entry points.
pub(crate) fn entry_points() -> String {
    let mut w = Wgsl::default();
    for form in QuadForm::ALL {
        w.tile_entry(
            form.entry(),
            GEMM_LANES,
            ("n0", GEMM_COLS),
            ("m0", GEMM_ROWS),
        );
        let mut acc = Vec::new();
        for r in 0..GEMM_ROWS {
            for q in 0..GEMM_COLS {
                w.line(format!("    var c{r}_{q} = 0.0;"));
                acc.push(format!("c{r}_{q}"));
            }
        }
        match form {
            QuadForm::AlongK => along_k(&mut w),
            QuadForm::AlongRows => along_rows(&mut w),
            QuadForm::AlongKCols => along_k_cols(&mut w),
        }
        let store = format!("quad_store(m0 + i / {GEMM_COLS}u, n0 + i % {GEMM_COLS}u, acc[i]);");
        w.spill(&[("acc", "f32", acc)], GEMM_ROWS * GEMM_COLS, &[store]);
    }
    w.finish()
}

/// Four k per step: a vec4 of each output row's op(a) and each column's op(b).
fn along_k(w: &mut Wgsl) {
    for q in 0..GEMM_COLS {
        w.line(format!("    let b_col{q} = quad_b_col(n0 + {q}u);"));
    }
    for r in 0..GEMM_ROWS {
        w.line(format!("    let a_row{r} = quad_a_row(m0 + {r}u);"));
    }
    w.line("    for (var k = 0u; k < p.k; k += 4u) {");
    w.outer_products(
        (GEMM_COLS, |q| format!("let b{q} = b_at4(b_col{q} + k)")),
        (GEMM_ROWS, |r| format!("let a{r} = a_at4(a_row{r} + k)")),
        |r, q| format!("c{r}_{q} = quad_dot(a{r}, b{q}, c{r}_{q})"),
    );
    w.line("    }");
}

/// One k per step: vec4s of four output rows of op(a)'s column k and four columns of
/// op(b)'s row k.
fn along_rows(w: &mut Wgsl) {
    w.line("    for (var k = 0u; k < p.k; k++) {");
    for i in 0..GEMM_ROWS / 4 {
        w.line(format!(
            "        let a{i} = a_at4(quad_a_rows(k, m0 + {}u));",
            4 * i
        ));
    }
    for j in 0..GEMM_COLS / 4 {
        w.line(format!(
            "        let b{j} = b_at4(quad_b_cols(k, n0 + {}u));",
            4 * j
        ));
    }
    for r in 0..GEMM_ROWS {
        for q in 0..GEMM_COLS {
            let (a, b) = ((r / 4, LANE[r as usize % 4]), (q / 4, LANE[q as usize % 4]));
            w.line(format!(
                "        c{r}_{q} = fma(a{}.{}, b{}.{}, c{r}_{q});",
                a.0, a.1, b.0, b.1
            ));
        }
    }
    w.line("    }");
}

/// Four k per step: a vec4 of each output row's op(a), and for each of the four k a
/// vec4 of four columns of op(b).
fn along_k_cols(w: &mut Wgsl) {
    for r in 0..GEMM_ROWS {
        w.line(format!("    let a_row{r} = quad_a_row(m0 + {r}u);"));
    }
    w.line("    for (var k = 0u; k < p.k; k += 4u) {");
    for i in 0..4 {
        for j in 0..GEMM_COLS / 4 {
            let n = 4 * j;
            w.line(format!(
                "        let b{i}_{j} = b_at4(quad_b_cols(k + {i}u, n0 + {n}u));"
            ));
        }
    }
    for r in 0..GEMM_ROWS {
        w.line(format!("        let a{r} = a_at4(a_row{r} + k);"));
        for q in 0..GEMM_COLS {
            for (i, lane) in LANE.iter().enumerate() {
                let (j, col) = (q / 4, LANE[q as usize % 4]);
                w.line(format!(
                    "        c{r}_{q} = fma(a{r}.{lane}, b{i}_{j}.{col}, c{r}_{q});"
                ));
            }
        }
    }
    w.line("    }");
}

#[cfg(test)]
mod tests {
    use super::QuadForm::*;
    use super::*;

    /// Each product goes to the form of its transposes exactly when every vec4 load is
    /// aligned and whole and the grid fits; otherwise to `main_rows` (`None`).
    #[test]
    fn form_for_takes_only_what_its_loads_allow() {
        let nt = MatmulParams::new(32, 64, 16).b_trans();
        let tn = MatmulParams::new(32, 64, 16).a_trans();
        let nn = MatmulParams::new(32, 64, 16);
        let whole = (4096, 4096);
        let cases = [
            (nt, whole, 65535, Some(AlongK)),
            (tn, whole, 65535, Some(AlongRows)),
            (nn, whole, 65535, Some(AlongKCols)),
            (
                MatmulParams::new(32, 64, 16).a_trans().b_trans(),
                whole,
                65535,
                None,
            ),
            (MatmulParams::new(32, 64, 18).b_trans(), whole, 65535, None),
            (MatmulParams::new(30, 64, 16).a_trans(), whole, 65535, None),
            (MatmulParams::new(32, 62, 16), whole, 65535, None),
            (nt.offsets(1, 0, 0), whole, 65535, None),
            (tn.ldb(66), whole, 65535, None),
            (nn, (4096, 4100), 65535, None),
            (nt, whole, 1, None),
            (nt.offsets(4, 8, 3), whole, 65535, Some(AlongK)),
        ];
        for (p, sizes, groups, want) in cases {
            assert_eq!(
                form_for(&p, sizes, groups),
                want,
                "{p:?} {sizes:?} {groups}"
            );
        }
    }
}

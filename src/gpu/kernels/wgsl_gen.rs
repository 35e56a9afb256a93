//! What the written-out kernel forms' generators share (`step_quads`,
//! `step_backward_quads`, `matmul_quads`): WGSL text built line by line, an entry
//! point's head (with its 2-D tile), a k loop's outer products, and its tail.

use std::fmt::Write;

/// The components of a vec4, by index.
pub(crate) const LANE: [char; 4] = ['x', 'y', 'z', 'w'];

/// Generated WGSL, one line at a time.
#[derive(Default)]
pub(crate) struct Wgsl(String);

impl Wgsl {
    pub fn line(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.0, "{}", text.as_ref());
    }

    /// The head of entry point `name`: a workgroup of `lanes` invocations, with the
    /// builtins `li` (invocation in the workgroup) and `wg` (workgroup id).
    pub fn entry(&mut self, name: &str, lanes: u32) {
        self.line(format!("@compute @workgroup_size({lanes})"));
        self.line(format!(
            "fn {name}(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {{"
        ));
    }

    /// [`Wgsl::entry`] for a 2-D tile: `x.0 = (wg.x · lanes + li) · x.1`, the first of the
    /// `x.1` columns (units) of this invocation, and `y.0 = wg.y · y.1`, the first of the
    /// workgroup's `y.1` rows.
    pub fn tile_entry(&mut self, name: &str, lanes: u32, x: (&str, u32), y: (&str, u32)) {
        self.entry(name, lanes);
        let ((xv, per_lane), (yv, per_group)) = (x, y);
        self.line(format!(
            "    let {xv} = (wg.x * {lanes}u + li) * {per_lane}u;"
        ));
        self.line(format!("    let {yv} = wg.y * {per_group}u;"));
    }

    /// One step of a k loop's body as an outer product: `col(c)` loads column operand c
    /// once, then for each row `row(r)` loads its operand and `update(r, c)` accumulates
    /// into every column (each a statement, without its `;`).
    pub fn outer_products(
        &mut self,
        (cols, col): (u32, impl Fn(u32) -> String),
        (rows, row): (u32, impl Fn(u32) -> String),
        update: impl Fn(u32, u32) -> String,
    ) {
        for c in 0..cols {
            self.line(format!("        {};", col(c)));
        }
        for r in 0..rows {
            self.line(format!("        {};", row(r)));
            for c in 0..cols {
                self.line(format!("        {};", update(r, c)));
            }
        }
    }

    /// The tail of an entry point: each `(array, type, accumulators)` copied into one
    /// private array, then `body` in a loop over `i < count`, and the closing brace.
    /// One call site of the (inlined) finishing function instead of one per
    /// accumulator: 64 inlined copies of the LSTM's update made the S3 step twice as
    /// slow on llvmpipe (BENCHMARKS.md §18).
    pub fn spill(&mut self, arrays: &[(&str, &str, Vec<String>)], count: u32, body: &[String]) {
        for (name, ty, vars) in arrays {
            self.line(format!("    var {name}: array<{ty}, {}>;", vars.len()));
            for (i, var) in vars.iter().enumerate() {
                self.line(format!("    {name}[{i}] = {var};"));
            }
        }
        self.line(format!("    for (var i = 0u; i < {count}u; i++) {{"));
        for text in body {
            self.line(format!("        {text}"));
        }
        self.line("    }");
        self.line("}");
    }

    pub fn finish(self) -> String {
        self.0
    }
}

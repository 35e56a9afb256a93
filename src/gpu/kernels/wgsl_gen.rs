//! What the written-out kernel forms' generators share (`step_quads`,
//! `step_backward_quads`, `matmul_quads`): WGSL text built line by line, an entry
//! point's head, and its tail.

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

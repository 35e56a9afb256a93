// probe_empty.wgsl — the smallest dispatch recorded the way `lstm_step` is recorded:
// a dynamic uniform offset selects the step, and the state ping-pongs between two
// buffers, so every dispatch depends on the one before it. Used to measure the fixed
// cost of one step dispatch (src/gpu/probe.rs); it does no other work.
//
//   dst[0] = src[0] + step.t
//
// Bindings:
//   0 step  uniform  {t, _, _, _}, one entry per dispatch at a dynamic offset
//   1 src   [1]      read
//   2 dst   [1]      written
// Grid: (1, 1, 1), workgroup 64 (one invocation does the write).

struct StepIndex {
    t: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> step: StepIndex;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32) {
    if (li == 0u) {
        dst[0] = src[0] + step.t;
    }
}

// state_f32.wgsl — the step kernels' ping-pong state ([2][2][B][H], see lstm_step.wgsl)
// as plain f32: binding 6 and its accessors. Compiled in front of recurrent_step.wgsl;
// state_f32x4.wgsl is the form `step_quads` reads four floats at a time.

@group(0) @binding(6) var<storage, read_write> state: array<f32>;

fn state_get(i: u32) -> f32 {
    return state[i];
}

fn state_set(i: u32, v: f32) {
    state[i] = v;
}

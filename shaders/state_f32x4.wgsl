// state_f32x4.wgsl — the same state as state_f32.wgsl, declared as vec4s so that
// `step_quads` loads four consecutive floats with one access (`state_get4`, i a multiple
// of 4: H % 4 == 0 keeps every row start aligned). Single floats are read and written
// as components. Each invocation of `step_quads` writes whole vec4s of state (its 4
// units, QUAD_UNITS in src/gpu/kernels/step_quads.rs, start at a multiple of 4), so no
// two invocations write parts of one vec4; the other forms in this module are never
// dispatched with it.

@group(0) @binding(6) var<storage, read_write> state: array<vec4<f32>>;

fn state_get(i: u32) -> f32 {
    return state[i >> 2u][i & 3u];
}

fn state_set(i: u32, v: f32) {
    state[i >> 2u][i & 3u] = v;
}

fn state_get4(i: u32) -> vec4<f32> {
    return state[i >> 2u];
}

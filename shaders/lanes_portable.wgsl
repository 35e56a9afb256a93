// lanes_portable.wgsl — `lanes_sum` (recurrent_step.wgsl) without subgroup operations:
// every level of the lanes' tree goes through workgroup memory. Compiled in where the
// adapter has no subgroups, or they are turned off (LSTM_SUBGROUPS=0).
const SHUFFLE_BELOW: u32 = 1u;

fn shuffle_xor(v: vec4<f32>, mask: u32) -> vec4<f32> {
    return v; // never called: no level is below SHUFFLE_BELOW = 1
}

// lanes_subgroup.wgsl — the levels of `lanes_sum` (recurrent_step.wgsl) below
// SHUFFLE_BELOW as subgroup shuffles (wgpu::Features::SUBGROUP): no workgroup memory and
// no barrier for them. The host writes `const SHUFFLE_BELOW` in front of this file: the
// adapter's smallest subgroup size, at most GEMV_LANES, once a probe has seen invocation
// li of a workgroup run as lane li % size of its subgroup (gpu/subgroups.rs), so that a
// block of SHUFFLE_BELOW neighbouring invocations always shares a subgroup.

fn shuffle_xor(v: vec4<f32>, mask: u32) -> vec4<f32> {
    return subgroupShuffleXor(v, mask);
}

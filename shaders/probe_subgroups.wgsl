// probe_subgroups.wgsl — how a 64-invocation workgroup (step_gemv's) lies on subgroups
// (gpu/subgroups.rs). The shuffled levels of `lanes_sum` assume that invocation li is
// lane li % size of its subgroup and that a shuffle-xor reaches lane li ^ mask; each
// invocation writes its subgroup's size where both hold, 0 where either does not.
@group(0) @binding(0) var<storage, read_write> seen: array<u32>;

@compute @workgroup_size(64)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    var ok = lane == li % size;
    for (var mask = 1u; mask < size && mask < 64u; mask <<= 1u) {
        let got = subgroupShuffleXor(li, mask); // every lane shuffles, whatever `ok` is
        ok = ok && got == (li ^ mask);
    }
    seen[li] = select(0u, size, ok);
}

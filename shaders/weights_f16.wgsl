// weights_f16.wgsl — the step kernels' recurrent weights stored as f16, two to a u32
// (element 2m in the low half, 2m+1 in the high half; the host packs them with IEEE
// round-to-nearest-even), read with `unpack2x16float`, which every adapter has (no
// SHADER_F16 feature needed). The math stays f32: only the bytes a step streams halve,
// which is what bounds a B = 1 step on a hardware GPU. Inference only.
//
// Declared as pairs of u32 (four weights), so that `step_quads` reads its four k with
// one load: on llvmpipe, where every load is a loop over the lanes, one vec2 load
// instead of two scalar ones made one B = 1 step product 23 % faster (a whole forward
// 12 %; BENCHMARKS.md §35). A matrix holds 4H·K weights: always whole pairs of pairs.

@group(0) @binding(2) var<storage, read> w_rec: array<vec2<u32>>;

fn w_at(i: u32) -> f32 {
    let pair = unpack2x16float(w_rec[i >> 2u][(i >> 1u) & 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}

// Elements i..i+3 (i a multiple of 4), for `step_quads`.
fn w_at4(i: u32) -> vec4<f32> {
    let quad = w_rec[i >> 2u];
    return vec4(unpack2x16float(quad.x), unpack2x16float(quad.y));
}

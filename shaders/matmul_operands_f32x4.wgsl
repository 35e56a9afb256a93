// matmul_operands_f32x4.wgsl — the same operands declared as vec4s for `main_quads`
// (matmul_quads.wgsl): `a_at4(i)` / `b_at4(i)` load elements i..i+3 at once (i a
// multiple of 4). `a_at` / `b_at` keep matmul.wgsl's other forms compiling.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

fn a_at(i: u32) -> f32 {
    return a[i >> 2u][i & 3u];
}

fn b_at(i: u32) -> f32 {
    return b[i >> 2u][i & 3u];
}

fn a_at4(i: u32) -> vec4<f32> {
    return a[i >> 2u];
}

fn b_at4(i: u32) -> vec4<f32> {
    return b[i >> 2u];
}

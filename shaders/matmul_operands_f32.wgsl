// matmul_operands_f32.wgsl — matmul.wgsl's operands a and b as plain f32 (bindings 1
// and 2) and their readers. Compiled in front of matmul.wgsl.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn a_at(i: u32) -> f32 {
    return a[i];
}

fn b_at(i: u32) -> f32 {
    return b[i];
}

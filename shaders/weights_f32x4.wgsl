// weights_f32x4.wgsl — the f32 recurrent weights ([H][4][K]) declared as vec4s, for
// `step_quads`: `w_at4(i)` loads elements i..i+3 of one gate row at once (i a multiple
// of 4; K % 4 == 0). `w_at(i)` keeps the other forms of the module compiling.

@group(0) @binding(2) var<storage, read> w_rec: array<vec4<f32>>;

fn w_at(i: u32) -> f32 {
    return w_rec[i >> 2u][i & 3u];
}

fn w_at4(i: u32) -> vec4<f32> {
    return w_rec[i >> 2u];
}

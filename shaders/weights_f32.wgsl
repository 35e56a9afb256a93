// weights_f32.wgsl — the step kernels' recurrent weights as f32 (the default): binding
// 2 and `w_at(i)`, element i of `w_rec` ([H][4][K], see lstm_step.wgsl). Compiled in
// front of recurrent_step.wgsl; weights_f16.wgsl is the half-size alternative.

@group(0) @binding(2) var<storage, read> w_rec: array<f32>;

fn w_at(i: u32) -> f32 {
    return w_rec[i];
}

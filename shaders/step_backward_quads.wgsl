// step_backward_quads.wgsl — the backward step's recurrent product
// (recurrent_step_backward.wgsl) for software adapters when H % 4 == 0: the sums of its
// `main_rows`, in the same order (q ascending, one fma per term: bit for bit), written
// out by the host (src/gpu/kernels/step_backward_quads.rs) for R batch rows, for the
// reasons in step_quads.wgsl.
//
//   grid (ceil(H/32), ceil(B/R)), workgroup 8; invocation: 4 consecutive k × R rows
//   for each unit j (q = 4j..4j+3, its four gate slots):
//       wh{g} = w_rec[4j+g][k0..k0+3]                  (4 vec4 loads; Full: wc{g} too)
//       d{r}  = dz_prev[b0+r][j]                        (1 vec4 load: the four gates)
//       h{r} = fma(vec4(d{r}[g]), wh{g}, h{r}), g = 0..3  (and c{r} with wc{g}, Full only)
//   then the cell's `update(b, k, rec_h, rec_c)` for the rows and units in bounds.

// Element index of w_rec[q][col + k] for the invocation's four k (col: 0 for the h
// block, H for the c block of Full peepholes; k clamped: 4 | H keeps the vec4 whole,
// quads past H are dropped).
fn quad_w(q: u32, col: u32, k: u32) -> u32 {
    return w_rec_index(q, col + min(k, p.hidden - 4u));
}

// The previous backward step's dz of batch row b (clamped), unit j: gates (i, f, g, o).
fn quad_dz_prev(b: u32, j: u32) -> vec4<f32> {
    return dz_prev(min(b, p.batch - 1u), j);
}

// acc + d.x·w0 + d.y·w1 + d.z·w2 + d.w·w3 (four k at once), one fma after the other.
fn quad_fma4(d: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>, acc: vec4<f32>) -> vec4<f32> {
    let a = fma(vec4(d.y), w1, fma(vec4(d.x), w0, acc));
    return fma(vec4(d.w), w3, fma(vec4(d.z), w2, a));
}

fn quad_update(b: u32, k: u32, rec_h: f32, rec_c: f32) {
    if (b < p.batch && k < p.hidden) {
        update(b, k, rec_h, rec_c);
    }
}

// step_quads.wgsl — the fifth form of the recurrent product (recurrent_step.wgsl), for
// software adapters when H % 4 == 0: the same sums as `step_rows`, in the same order
// (bit for bit), read four k at a time.
//
// Why: a CPU running the shaders (llvmpipe) executes 8 invocations as one SIMD vector
// and turns every buffer access into a loop over the 8 lanes, one per component, and
// it keeps a private array with a loop-variable index in memory. Measured on a
// 256-unit, 128-row step (BENCHMARKS.md §18): the `step_rows` loop nest runs at
// ~4 GFLOP/s; the same block written out, one register per accumulator, with vec4
// loads of 4 k of each gate row (weights_f32x4.wgsl) and of the state
// (state_f32x4.wgsl), at 13–25 GFLOP/s. WGSL has no unrolling directive, so the host
// writes the entry point (src/gpu/kernels/step_quads.rs) for R batch rows:
//
//   grid (ceil(H/32), ceil(B/R)), workgroup 8; invocation: 4 units (16 gate rows) × R rows
//   let w_row{u} = quad_weight_row(j0 + u); let s_row{r} = quad_state_row(b0 + r);
//   for k in 0..K step 4:
//       w{u} = quad_weights(w_row{u}, k)                   (4 vec4 loads per unit)
//       s{r} = state_get4(s_row{r} + quad_k(k))            (1 vec4 load per row)
//       a{r}_{u} = quad_fma(w{u}, s{r}, a{r}_{u})          (16 FMAs)
//   quad_finish(b0 + r, j0 + u, a{r}_{u})
//
// Rows past the batch and units past H are clamped for the loads (every load in
// bounds, the same for every lane) and dropped at the end.

// The four gate rows of one unit over k..k+3.
struct Quad {
    i: vec4<f32>,
    f: vec4<f32>,
    g: vec4<f32>,
    o: vec4<f32>,
}

// Element index of unit j's first gate row in w_rec (clamped to the last unit).
fn quad_weight_row(j: u32) -> u32 {
    return unit_row(min(j, p.hidden - 1u));
}

// Where batch row b's operand starts in the state half this step reads (clamped).
fn quad_state_row(b: u32) -> u32 {
    return read_base() + min(b, p.batch - 1u) * p.hidden;
}

// Offset of operand element k from its row start: h for k < H, c (Full peepholes) for
// k ≥ H, which starts B·H further on. H % 4 == 0: a quad never straddles the two.
fn quad_k(k: u32) -> u32 {
    return select(k, k + p.batch * p.hidden - p.hidden, k >= p.hidden);
}

fn quad_weights(row: u32, k: u32) -> Quad {
    let kr = p.k_rec;
    return Quad(w_at4(row + k), w_at4(row + kr + k), w_at4(row + 2u * kr + k), w_at4(row + 3u * kr + k));
}

// acc += the four gates' products over k..k+3, one k after the other (as step_rows).
fn quad_fma(w: Quad, s: vec4<f32>, acc: vec4<f32>) -> vec4<f32> {
    var a = fma(vec4(w.i.x, w.f.x, w.g.x, w.o.x), vec4(s.x), acc);
    a = fma(vec4(w.i.y, w.f.y, w.g.y, w.o.y), vec4(s.y), a);
    a = fma(vec4(w.i.z, w.f.z, w.g.z, w.o.z), vec4(s.z), a);
    return fma(vec4(w.i.w, w.f.w, w.g.w, w.o.w), vec4(s.w), a);
}

fn quad_finish(b: u32, j: u32, acc: vec4<f32>) {
    if (b < p.batch && j < p.hidden) {
        cell_update(b, j, acc);
    }
}

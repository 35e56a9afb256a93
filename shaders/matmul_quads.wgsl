// matmul_quads.wgsl — `main_quads`, matmul.wgsl's product for software adapters in the
// case both operands run along k in memory: op(a) = a [M, K] and op(b) = bᵀ with b
// [N, K] (the flags without A_TRANS, with B_TRANS: the LSTM's input projection
// x·W_ihᵀ), every row start a multiple of 4 (K, lda, ldb, a_off, b_off). The same sums
// as `main_rows`, in the same order (k ascending, one fma per term): bit for bit.
//
// Why (the reasons of step_quads.wgsl): `main_rows` keeps its 8 × 8 accumulators in a
// private array indexed by loop variables, which a CPU running the shaders keeps in
// memory, one emulated access per element; written out, one register per accumulator,
// with vec4 loads of four k, a 512³ product ran at 17–21 GFLOP/s against 2–3 (BENCHMARKS.md
// §18). The host writes the entry point (src/gpu/kernels/matmul_quads.rs):
//
//   grid (ceil(N/64), ceil(M/16)), workgroup 8; invocation: 8 columns × 16 rows
//   for k in 0..K step 4: a{r} = a_at4(row r + k); b{q} = b_at4(column q + k)
//       c{r}_{q} = quad_dot(a{r}, b{q}, c{r}_{q})
//   then `store` (matmul.wgsl: bias, accumulate) for the rows and columns in bounds.

// Element offset of row m of op(a) (clamped to the last row: loads stay in bounds).
fn quad_a_row(m: u32) -> u32 {
    return p.a_off + min(m, p.m - 1u) * p.lda;
}

// Element offset of column n of op(b) = row n of b (clamped).
fn quad_b_col(n: u32) -> u32 {
    return p.b_off + min(n, p.n - 1u) * p.ldb;
}

// acc + a.x·b.x + a.y·b.y + a.z·b.z + a.w·b.w, one fma after the other.
fn quad_dot(a4: vec4<f32>, b4: vec4<f32>, acc: f32) -> f32 {
    return fma(a4.w, b4.w, fma(a4.z, b4.z, fma(a4.y, b4.y, fma(a4.x, b4.x, acc))));
}

fn quad_store(m: u32, n: u32, sum: f32) {
    if (m < p.m && n < p.n) {
        store(m, n, sum);
    }
}

// matmul_quads.wgsl — matmul.wgsl's product for software adapters, written out in three
// forms (the same sums as `main_rows`, in the same order — k ascending, one fma per
// term — so bit for bit):
//
//   main_quads     op(a) = a [M, K], op(b) = bᵀ with b [N, K] (no A_TRANS, B_TRANS: the
//                  input projection x·W_ihᵀ): both operands run along k; four k per
//                  vec4 load (4 | K, lda, ldb, a_off, b_off).
//   main_quads_tn  op(a) = aᵀ with a [K, M], op(b) = b [K, N] (A_TRANS, no B_TRANS: the
//                  weight gradients dZᵀ·x): both run along the output's rows and
//                  columns; one k per step, four rows or columns per vec4 load
//                  (4 | M, N, lda, ldb, a_off, b_off).
//   main_quads_nn  op(a) = a [M, K], op(b) = b [K, N] (no transposes: the input
//                  gradients dZ·W_ih): four k of each row of a per vec4 load, and for
//                  each of those k four columns of b (4 | K, N, lda, ldb, a_off, b_off).
//
// Why (the reasons of step_quads.wgsl): `main_rows` keeps its 8 × 8 accumulators in a
// private array indexed by loop variables, which a CPU running the shaders keeps in
// memory, one emulated access per element; written out, one register per accumulator,
// with vec4 loads, a 512³ product ran at 17–22 GFLOP/s against 2–3 (BENCHMARKS.md §18).
// The host writes the entry points (src/gpu/kernels/matmul_quads.rs):
//
//   grid (ceil(N/64), ceil(M/16)), workgroup 8; invocation: 8 columns × 16 rows
//   main_quads:    for k step 4: a{r} = a_at4(row r + k); b{q} = b_at4(column q + k)
//                                c{r}_{q} = quad_dot(a{r}, b{q}, c{r}_{q})
//   main_quads_tn: for k:        a{i} = rows 4i..4i+3 of column k; b{j} = columns 4j..
//                                c{r}_{q} = fma(a{r/4}[r%4], b{q/4}[q%4], c{r}_{q})
//   main_quads_nn: for k step 4: a{r} = a_at4(row r + k); b{i}_{j} = columns 4j.. of row k+i
//                                c{r}_{q} = fma(a{r}[i], b{i}_{q/4}[q%4], c{r}_{q}), i = 0..3
//   then `store` (matmul.wgsl: bias, accumulate) for the rows and columns in bounds.
// Rows and columns past the product are clamped for the loads and not stored.

// Element offset of row m of op(a) (clamped to the last row: loads stay in bounds).
fn quad_a_row(m: u32) -> u32 {
    return p.a_off + min(m, p.m - 1u) * p.lda;
}

// Element offset of column n of op(b) = row n of b (clamped).
fn quad_b_col(n: u32) -> u32 {
    return p.b_off + min(n, p.n - 1u) * p.ldb;
}

// Element offset of op(a)'s rows m..m+3 in column k, aᵀ (clamped: 4 | M keeps the
// vec4 whole; rows past M are not stored).
fn quad_a_rows(k: u32, m: u32) -> u32 {
    return p.a_off + k * p.lda + min(m, p.m - 4u);
}

// Element offset of op(b)'s columns n..n+3 in row k (clamped likewise).
fn quad_b_cols(k: u32, n: u32) -> u32 {
    return p.b_off + k * p.ldb + min(n, p.n - 4u);
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

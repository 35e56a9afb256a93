// matmul.wgsl — the crate's one GEMM. It hoists the LSTM's input projection out of
// the time loop (Appleyard et al. 2016: all T·B rows in one product), and computes
// the weight and input gradients of training over all steps at once.
//
//   c[m, n] = Σ_k op(a)[m, k] · op(b)[k, n]  (+ c[m, n] if ACCUMULATE)  (+ bias[n] if BIAS)
//   op(a) = a [M, K] (lda), or aᵀ with a [K, M] if A_TRANS
//   op(b) = b [K, N] (ldb), or bᵀ with b [N, K] if B_TRANS
//   a, b and c start at element offsets a_off, b_off, c_off (sub-matrices of larger
//   buffers without the 256-byte alignment a binding offset would need)
//
// Forward input projection: a = x [T·B, I], b = W_ih [4H, I] (B_TRANS), bias = b_ih + b_hh.
// Every output element is summed by one thread in a fixed order: results are
// deterministic run to run (no atomics).
//
// Bindings:
//   0 p     uniform  MatmulParams in src/gpu/kernels.rs
//   1 a     storage  read
//   2 b     storage  read
//   3 bias  [N]      read (a dummy when BIAS is off)
//   4 c     [M, ldc] read_write
// Grid: (ceil(N / 64), ceil(M / 64)), workgroup 16×16; each thread owns a 4×4 block of
// outputs strided by 16 so that neighbouring threads touch neighbouring words.
//
// Split-K (`main` with k_chunk > 0; the host's choice for a weight gradient whose few
// output tiles would leave a GPU idle while each sums all T·B rows): grid z = the
// slices; workgroup z sums k in [z·k_chunk, (z+1)·k_chunk) into slice z of a scratch
// `c` ([slices][M][ldc], no flags), then `sum_splits` adds the slices in z order into
// the real `c` with the flags. Still one fixed order per element: deterministic.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    flags: u32, // 1 A_TRANS, 2 B_TRANS, 4 ACCUMULATE, 8 BIAS
    lda: u32,
    ldb: u32,
    ldc: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    // `main`: the K slice of one workgroup z (0: all of K, no split).
    k_chunk: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
// bindings 1 and 2, a and b, and their readers a_at(i) / b_at(i):
// matmul_operands_f32.wgsl (or matmul_operands_f32x4.wgsl for `main_quads`).
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const A_TRANS: u32 = 1u;
const B_TRANS: u32 = 2u;
const ACCUMULATE: u32 = 4u;
const BIAS: u32 = 8u;
const LANES_OVER_COLS: u32 = 16u; // main_rows only: see there

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [TILE_K][TILE]
var<workgroup> b_tile: array<f32, 1024>; // [TILE_K][TILE]

// The epilogue every form shares: `+ bias`, `+ c` as the flags say, then write.
fn store(m: u32, n: u32, sum: f32) {
    var v = sum;
    if ((p.flags & BIAS) != 0u) {
        v += bias[n];
    }
    let at = p.c_off + m * p.ldc + n;
    if ((p.flags & ACCUMULATE) != 0u) {
        v += c[at];
    }
    c[at] = v;
}

// Element (row, k) of op(a), 0 outside the product or past `k_stop` (a slice's end).
fn load_a(row: u32, k: u32, k_stop: u32) -> f32 {
    if (row >= p.m || k >= k_stop) {
        return 0.0;
    }
    if ((p.flags & A_TRANS) != 0u) {
        return a_at(p.a_off + k * p.lda + row);
    }
    return a_at(p.a_off + row * p.lda + k);
}

fn load_b(k: u32, col: u32, k_stop: u32) -> f32 {
    if (col >= p.n || k >= k_stop) {
        return 0.0;
    }
    if ((p.flags & B_TRANS) != 0u) {
        return b_at(p.b_off + col * p.ldb + k);
    }
    return b_at(p.b_off + k * p.ldb + col);
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let m0 = wg.y * TILE;
    let n0 = wg.x * TILE;
    var k_begin = 0u;
    var k_stop = p.k;
    if (p.k_chunk > 0u) {
        k_begin = wg.z * p.k_chunk;
        k_stop = min(k_begin + p.k_chunk, p.k);
    }
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = k_begin; k0 < k_stop; k0 += TILE_K) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + 256u * i;
            // Untransposed operands are k-contiguous: let neighbouring threads take
            // neighbouring k. Transposed ones are row-contiguous: neighbouring rows.
            var kk = e % TILE_K;
            var r = e / TILE_K;
            if ((p.flags & A_TRANS) != 0u) {
                kk = e / TILE;
                r = e % TILE;
            }
            a_tile[kk * TILE + r] = load_a(m0 + r, k0 + kk, k_stop);
            kk = e % TILE_K;
            r = e / TILE_K;
            if ((p.flags & B_TRANS) == 0u) {
                kk = e / TILE;
                r = e % TILE;
            }
            b_tile[kk * TILE + r] = load_b(k0 + kk, n0 + r, k_stop);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var r = 0u; r < 4u; r++) {
                av[r] = a_tile[kk * TILE + lid.y + 16u * r];
                bv[r] = b_tile[kk * TILE + lid.x + 16u * r];
            }
            for (var r = 0u; r < 4u; r++) {
                for (var q = 0u; q < 4u; q++) {
                    acc[r][q] = fma(av[r], bv[q], acc[r][q]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let m = m0 + lid.y + 16u * r;
        for (var q = 0u; q < 4u; q++) {
            let n = n0 + lid.x + 16u * q;
            if (m < p.m && n < p.n) {
                store(wg.z * p.m + m, n, acc[r][q]); // slice z's rows (z = 0 unsplit)
            }
        }
    }
}

// The second dispatch of a split `main`: c[m, n] = Σ_z slice z (z ascending, from +0),
// then the flags as ever. `a` is bound to the scratch (a_off 0, lda its row stride) and
// `p.k` holds the slice count. Grid (ceil(N / 64), M), one element per invocation.
@compute @workgroup_size(64)
fn sum_splits(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let m = wg.y;
    let n = wg.x * 64u + li;
    if (n >= p.n) {
        return;
    }
    var sum = 0.0;
    for (var z = 0u; z < p.k; z++) {
        sum += a_at(p.a_off + (z * p.m + m) * p.lda + n);
    }
    store(m, n, sum);
}

// ---- software adapters (llvmpipe / lavapipe) ----------------------------------------
//
// `main_rows`: the same product for a CPU running the shaders, where every load from a
// buffer or workgroup memory is a loop over the SIMD lanes with a bounds check per lane
// and an FMA is one instruction (see the note in lstm_step.wgsl). Each invocation keeps
// an 8 × 8 block of outputs in registers: per k, 16 loads feed 64 FMAs (the tiled
// `main` needs ~0.6 loads per FMA, through workgroup memory and two barriers per
// K-slice). Same flags, same summation order (k ascending, one fma per term).
// Grid: (ceil(N / 8), ceil(M / 64)), workgroup 8 (one SIMD vector): lane = 8 rows,
// the workgroup's 8 columns are shared. With LANES_OVER_COLS (the host sets it when
// M < 64, where most lanes would hold clamped copies of the last rows): grid
// (ceil(N / 64), ceil(M / 8)), lane = 8 columns, the workgroup's 8 rows shared.

const BLOCK: u32 = 8u;

@compute @workgroup_size(8)
fn main_rows(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    var m0 = (wg.y * 8u + li) * BLOCK;
    var n0 = wg.x * BLOCK;
    if ((p.flags & LANES_OVER_COLS) != 0u) {
        m0 = wg.y * BLOCK;
        n0 = (wg.x * 8u + li) * BLOCK;
    }
    // Clamped so that every load is in bounds; clamped rows and columns are not stored.
    // (Then turned into element offsets of each row of op(a) and column of op(b).)
    var rows: array<u32, BLOCK>;
    var cols: array<u32, BLOCK>;
    for (var i = 0u; i < BLOCK; i++) {
        rows[i] = min(m0 + i, p.m - 1u);
        cols[i] = min(n0 + i, p.n - 1u);
    }
    // Strides of op(a) along rows and k, of op(b) along k and columns: the loads in the
    // loop below are then unconditional (no per-lane branch around each one).
    var a_row = p.lda;
    var a_k = 1u;
    if ((p.flags & A_TRANS) != 0u) {
        a_row = 1u;
        a_k = p.lda;
    }
    var b_k = p.ldb;
    var b_col = 1u;
    if ((p.flags & B_TRANS) != 0u) {
        b_k = 1u;
        b_col = p.ldb;
    }
    for (var i = 0u; i < BLOCK; i++) {
        rows[i] = p.a_off + rows[i] * a_row;
        cols[i] = p.b_off + cols[i] * b_col;
    }
    var acc: array<array<f32, BLOCK>, BLOCK>; // [row][column]
    for (var k = 0u; k < p.k; k++) {
        var av: array<f32, BLOCK>;
        var bv: array<f32, BLOCK>;
        for (var i = 0u; i < BLOCK; i++) {
            av[i] = a_at(rows[i] + k * a_k);
            bv[i] = b_at(cols[i] + k * b_k);
        }
        for (var r = 0u; r < BLOCK; r++) {
            for (var q = 0u; q < BLOCK; q++) {
                acc[r][q] = fma(av[r], bv[q], acc[r][q]);
            }
        }
    }
    for (var r = 0u; r < BLOCK; r++) {
        let m = m0 + r;
        for (var q = 0u; q < BLOCK; q++) {
            let n = n0 + q;
            if (m < p.m && n < p.n) {
                store(m, n, acc[r][q]);
            }
        }
    }
}

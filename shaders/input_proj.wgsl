// input_proj.wgsl — the hoisted input projection of one layer-direction
// (Appleyard et al. 2016): x_t does not depend on the recurrence, so all T·B rows
// are multiplied in one GEMM before the time loop.
//
//   gx[m, n] = Σ_k x[m, k] · w[n, k] + bias[n]        gx = X·Wᵀ + b
//
// Bindings:
//   0 params  uniform  {m = rows (T·B), n = 4H, k = input width}
//   1 x       [m, k]   time-major input rows
//   2 w       [n, k]   W_ih with rows unit-interleaved: row 4j+g is gate g of unit j
//   3 bias    [n]      b_ih + b_hh in the same order
//   4 gx      [m, n]   output; row m is (t, b) = (m / B, m % B)
// Grid: (ceil(n / 64), ceil(m / 64)), workgroup 16×16; each thread owns a 4×4
// block of outputs strided by 16 so that neighbouring threads touch neighbouring words.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

var<workgroup> x_tile: array<f32, 1024>; // [TILE_K][TILE]
var<workgroup> w_tile: array<f32, 1024>; // [TILE_K][TILE]

@compute @workgroup_size(16, 16)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let m0 = wg.y * TILE;
    let n0 = wg.x * TILE;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + 256u * i;
            let kk = e % TILE_K;
            let row = e / TILE_K;
            let k = k0 + kk;
            var xv = 0.0;
            if (m0 + row < p.m && k < p.k) {
                xv = x[(m0 + row) * p.k + k];
            }
            x_tile[kk * TILE + row] = xv;
            var wv = 0.0;
            if (n0 + row < p.n && k < p.k) {
                wv = w[(n0 + row) * p.k + k];
            }
            w_tile[kk * TILE + row] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var r = 0u; r < 4u; r++) {
                a[r] = x_tile[kk * TILE + lid.y + 16u * r];
                b[r] = w_tile[kk * TILE + lid.x + 16u * r];
            }
            for (var r = 0u; r < 4u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    acc[r][c] = fma(a[r], b[c], acc[r][c]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let m = m0 + lid.y + 16u * r;
        for (var c = 0u; c < 4u; c++) {
            let n = n0 + lid.x + 16u * c;
            if (m < p.m && n < p.n) {
                gx[m * p.n + n] = acc[r][c] + bias[n];
            }
        }
    }
}

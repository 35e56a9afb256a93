// recurrent_step_backward.wgsl — what every recurrent cell's fused BPTT step shares:
// the uniforms, the bindings and the two forms of the recurrent product
// rec_h[b][k] = Σ_q dz_prev[b][q] · w_rec[q][k] over the 4H gate slots q (and rec_c, the
// c-path product of Full peepholes). Each form ends by calling `update(b, k, rec_h, rec_c)`,
// the cell's pointwise half, defined by lstm_step_backward.wgsl, gru_step_backward.wgsl or
// gru_reset_before_step_backward.wgsl (whose second dispatch finishes ∂r).
// The host compiles activations.wgsl + weights_f32.wgsl + <cell>_step_backward.wgsl +
// this file as one module (step_backward_quads.wgsl's: weights_f32x4.wgsl, and
// step_backward_quads after this).
// Bindings, grids and step bits: see lstm_step_backward.wgsl's header.

struct BackwardParams {
    batch: u32,
    hidden: u32,
    k_rec: u32,
    peephole: u32, // 0 none, 1 diagonal, 2 full
    dy_stride: u32,
    dy_offset: u32,
    has_dy: u32,
    // Both directions in one dispatch (see `enter_direction`): the sequence's steps,
    // and the direction blocks of `gates`/`prev` and of `dz`.
    steps: u32,
    cache_stride: u32,
    dz_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

struct BackwardIndex {
    t_global: u32,
    t_local: u32,
    t_prev: u32,
    bits: u32,
}

@group(0) @binding(0) var<uniform> p: BackwardParams;
@group(0) @binding(1) var<uniform> step: BackwardIndex;
// binding 2, w_rec, and its reader w_at(i): weights_f32.wgsl (weights_f32x4.wgsl in the
// step_backward_quads module).
@group(0) @binding(3) var<storage, read> peep: array<f32>;
@group(0) @binding(4) var<storage, read> gates: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> prev: array<f32>;
@group(0) @binding(6) var<storage, read> lens: array<u32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read_write> dz: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> carry: array<f32>;

const PARITY: u32 = 1u;
const FIRST: u32 = 2u;
const FINAL: u32 = 4u;

const TILE_UNITS: u32 = 16u;
const TILE_ROWS: u32 = 16u;
const TILE_Q: u32 = 16u;

var<workgroup> wh_tile: array<f32, 256>; // [TILE_Q][TILE_UNITS]: w_rec[q][k]
var<workgroup> wc_tile: array<f32, 256>; // [TILE_Q][TILE_UNITS]: w_rec[q][H + k] (Full)
var<workgroup> dz_tile: array<f32, 256>; // [TILE_Q][TILE_ROWS]

// tanh_stable comes from activations.wgsl, prepended at compile time.

// The direction this workgroup steps (`dir`, `enter_direction`, and where its blocks of
// `peep`, `gates` and `prev` lie: directions.wgsl). With both directions in a dispatch,
// `dz` holds them in blocks of p.dz_stride and `carry` is [2][2][2][B][H] (`dy`'s
// columns as ever), and direction 1 takes direction 0's index entries mirrored in
// time: where direction 0 steps t, it steps T − 1 − t, and its predecessor is the
// mirror of direction 0's.
fn mirrored(t: u32) -> u32 {
    return select(t, p.steps - 1u - t, dir == 1u);
}

fn t_global() -> u32 {
    return mirrored(step.t_global);
}

fn t_local() -> u32 {
    return mirrored(step.t_local);
}

// Element (q, col) of this direction's w_rec ([H][4][K]: q = 4j + g over 4H).
fn w_rec_index(q: u32, col: u32) -> u32 {
    return (dir * 4u * p.hidden + q) * p.k_rec + col;
}

fn dy_at(row: u32, k: u32) -> f32 {
    return dy[row * p.dy_stride + p.dy_offset + dir * p.hidden + k];
}

fn dz_index(row: u32, k: u32) -> u32 {
    return dir * p.dz_stride + row * p.hidden + k;
}

// The start of carry half `half` (0 or 1) of this direction: (dh, dc) `[2][B][H]`.
fn carry_half(half: u32) -> u32 {
    return (2u * dir + half) * 2u * p.batch * p.hidden;
}

// The previous backward step's dz of batch row b, unit j: gates (i, f, g, o).
fn dz_prev(b: u32, j: u32) -> vec4<f32> {
    return dz[dz_index(mirrored(step.t_prev) * p.batch + b, j)];
}

fn dz_prev_at(b: u32, q: u32) -> f32 {
    return dz_prev(b, q / 4u)[q % 4u];
}

@compute @workgroup_size(16, 4)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    enter_direction(wg);
    let h = p.hidden;
    let k0 = wg.x * TILE_UNITS;
    let b0 = wg.y * TILE_ROWS;
    let full = p.peephole == 2u;
    var rec_h: array<f32, 4>;
    var rec_c: array<f32, 4>;
    if ((step.bits & FIRST) == 0u) {
        for (var q0 = 0u; q0 < 4u * h; q0 += TILE_Q) {
            for (var i = 0u; i < 4u; i++) {
                let e = li + 64u * i;
                // Weights: neighbouring threads take neighbouring k (contiguous in w_rec).
                let qq = e / TILE_UNITS;
                let kk = e % TILE_UNITS;
                let q = q0 + qq;
                let k = k0 + kk;
                var wh = 0.0;
                var wc = 0.0;
                if (q < 4u * h && k < h) {
                    wh = w_at(w_rec_index(q, k));
                    if (full) {
                        wc = w_at(w_rec_index(q, h + k));
                    }
                }
                wh_tile[qq * TILE_UNITS + kk] = wh;
                wc_tile[qq * TILE_UNITS + kk] = wc;
                // dz_prev: neighbouring threads take neighbouring q (contiguous in dz).
                let bb = e / TILE_Q;
                let qd = e % TILE_Q;
                var v = 0.0;
                if (b0 + bb < p.batch && q0 + qd < 4u * h) {
                    v = dz_prev_at(b0 + bb, q0 + qd);
                }
                dz_tile[qd * TILE_ROWS + bb] = v;
            }
            workgroupBarrier();
            // Only Full peepholes have a c-path product: the other modes skip its FMAs
            // (a uniform branch; rec_c stays 0 there, as it summed zeros before).
            for (var qq = 0u; qq < TILE_Q; qq++) {
                let wh = wh_tile[qq * TILE_UNITS + lid.x];
                if (full) {
                    let wc = wc_tile[qq * TILE_UNITS + lid.x];
                    for (var r = 0u; r < 4u; r++) {
                        let d = dz_tile[qq * TILE_ROWS + lid.y + 4u * r];
                        rec_h[r] = fma(d, wh, rec_h[r]);
                        rec_c[r] = fma(d, wc, rec_c[r]);
                    }
                } else {
                    for (var r = 0u; r < 4u; r++) {
                        rec_h[r] = fma(dz_tile[qq * TILE_ROWS + lid.y + 4u * r], wh, rec_h[r]);
                    }
                }
            }
            workgroupBarrier();
        }
    }
    let k = k0 + lid.x;
    if (k >= h) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let b = b0 + lid.y + 4u * r;
        if (b < p.batch) {
            update(b, k, rec_h[r], rec_c[r]);
        }
    }
}

// ---- software adapters (llvmpipe / lavapipe): no workgroup memory, no barriers ----
// Like `step_rows` in lstm_step.wgsl: each of 8 invocations owns 4 consecutive units and
// up to 8 batch rows, keeps their sums in registers and streams q over 4H once.
// Grid: (ceil(H/32), ceil(B/8)), workgroup 8.

@compute @workgroup_size(8)
fn main_rows(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    enter_direction(wg);
    let h = p.hidden;
    let k0 = (wg.x * 8u + li) * 4u;
    let b0 = wg.y * 8u;
    let nrows = min(8u, p.batch - b0);
    let full = p.peephole == 2u;
    var kc: array<u32, 4>; // clamped so every load stays in bounds; extra units are dropped
    for (var u = 0u; u < 4u; u++) {
        kc[u] = min(k0 + u, h - 1u);
    }
    var rh: array<array<f32, 4>, 8>; // [row][unit]
    var rc: array<array<f32, 4>, 8>;
    if ((step.bits & FIRST) == 0u) {
        for (var q = 0u; q < 4u * h; q++) {
            var wh: array<f32, 4>;
            var wc: array<f32, 4>;
            for (var u = 0u; u < 4u; u++) {
                wh[u] = w_at(w_rec_index(q, kc[u]));
                if (full) {
                    wc[u] = w_at(w_rec_index(q, h + kc[u]));
                }
            }
            for (var r = 0u; r < 8u; r++) {
                if (r < nrows) {
                    let d = dz_prev_at(b0 + r, q);
                    for (var u = 0u; u < 4u; u++) {
                        rh[r][u] = fma(d, wh[u], rh[r][u]);
                    }
                    if (full) { // the c-path product: Full peepholes only
                        for (var u = 0u; u < 4u; u++) {
                            rc[r][u] = fma(d, wc[u], rc[r][u]);
                        }
                    }
                }
            }
        }
    }
    for (var r = 0u; r < nrows; r++) {
        for (var u = 0u; u < 4u; u++) {
            if (k0 + u < h) {
                update(b0 + r, k0 + u, rh[r][u], rc[r][u]);
            }
        }
    }
}

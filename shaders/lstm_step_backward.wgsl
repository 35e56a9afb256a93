// lstm_step_backward.wgsl — one fused BPTT step for one layer-direction: the recurrent
// product of the previous backward step's dz with W_rec, fused with this step's
// pointwise gate derivatives. Steps run in the reverse of the forward's order.
//
//   dh_in = carry_h + Σ_q dz_prev[b][q] · w_rec[q][k]          q = 4j + g over 4H
//   dc_in = carry_c (+ Σ_q dz_prev[b][q] · w_rec[q][H + k] for Full peepholes)
//   live (t < lens[b]):  dh = dh_in + dy[t][b][k];  with c_t = f·c_{t-1} + i·g:
//     dz_o = dh·tanh(c_t)·o(1−o);   dc = dc_in + dh·o·(1−tanh²c_t) (+ p_o·dz_o)
//     dz_i = dc·g·i(1−i);  dz_f = dc·c_{t-1}·f(1−f);  dz_g = dc·i·(1−g²)
//     carry_h ← 0 (dz carries it);  carry_c ← dc·f (+ p_i·dz_i + p_f·dz_f)
//   not live: dz = 0, carry ← (dh_in, dc_in) unchanged (the forward copied the state)
//   FINAL (one extra dispatch after the last step): carry ← (dh_in, dc_in) = (dh_0, dc_0)
//
// Bindings:
//   0 p       uniform  BackwardParams (src/gpu/kernels.rs)
//   1 step    uniform  {t_global, t_local, t_prev (local row of dz_prev), bits}, dynamic offset;
//                      bits: 1 parity, 2 FIRST (no dz_prev), 4 FINAL
//   2 w_rec   [H][4][K]          3 peep  [H][3] (i, f, o)
//   4 gates   [T][B][H] vec4     5 prev  [T][B][2H] (h_{t-1}, c_{t-1})
//   6 lens    [B]                7 dy    [T][B][dy_stride], this direction at dy_offset
//   8 dz      [len + 1][B][H] vec4 (chunk-local rows), written at row t_local, read at
//             row t_prev (the boundary row len holds the previous chunk's last dz)
//   9 carry   [2][2][B][H]: ping-pong halves of (dh, dc); step reads half `parity`
// Grids: main (ceil(H/16), ceil(B/16)), workgroup 16 units × 4, each thread 4 batch
// rows; main_rows (ceil(H/32), ceil(B/8)) for software adapters (see below).

struct BackwardParams {
    batch: u32,
    hidden: u32,
    k_rec: u32,
    peephole: u32, // 0 none, 1 diagonal, 2 full
    dy_stride: u32,
    dy_offset: u32,
    has_dy: u32,
    _pad: u32,
}

struct BackwardIndex {
    t_global: u32,
    t_local: u32,
    t_prev: u32,
    bits: u32,
}

@group(0) @binding(0) var<uniform> p: BackwardParams;
@group(0) @binding(1) var<uniform> step: BackwardIndex;
@group(0) @binding(2) var<storage, read> w_rec: array<f32>;
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

fn dz_prev_at(b: u32, q: u32) -> f32 {
    let v = dz[(step.t_prev * p.batch + b) * p.hidden + q / 4u];
    return v[q % 4u];
}

@compute @workgroup_size(16, 4)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let h = p.hidden;
    let k0 = wg.x * TILE_UNITS;
    let b0 = wg.y * TILE_ROWS;
    let kr = p.k_rec;
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
                    wh = w_rec[q * kr + k];
                    if (full) {
                        wc = w_rec[q * kr + h + k];
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

// The pointwise half for batch row b, unit k, given the recurrent sums of dz_prev·W_rec.
fn update(b: u32, k: u32, rec_h: f32, rec_c: f32) {
    let h = p.hidden;
    let rd = (step.bits & PARITY) * 2u * p.batch * h;
    let wr = (1u - (step.bits & PARITY)) * 2u * p.batch * h;
    let hi = b * h + k;
    let ci = (p.batch + b) * h + k;
    let dh_in = carry[rd + hi] + rec_h;
    let dc_in = carry[rd + ci] + rec_c;
    if ((step.bits & FINAL) != 0u) {
        carry[wr + hi] = dh_in;
        carry[wr + ci] = dc_in;
        return;
    }
    let row = step.t_local * p.batch + b;
    if (step.t_global >= lens[b]) {
        dz[row * h + k] = vec4(0.0);
        carry[wr + hi] = dh_in;
        carry[wr + ci] = dc_in;
        return;
    }
    var dh = dh_in;
    if (p.has_dy == 1u) {
        dh += dy[row * p.dy_stride + p.dy_offset + k];
    }
    let gt = gates[row * h + k];
    let c_prev = prev[row * 2u * h + h + k];
    let tc = tanh_stable(gt.y * c_prev + gt.x * gt.z);
    let dz_o = dh * tc * gt.w * (1.0 - gt.w);
    var dc = dc_in + dh * gt.w * (1.0 - tc * tc);
    if (p.peephole == 1u) {
        dc += peep[3u * k + 2u] * dz_o;
    }
    let dz_i = dc * gt.z * gt.x * (1.0 - gt.x);
    let dz_f = dc * c_prev * gt.y * (1.0 - gt.y);
    let dz_g = dc * gt.x * (1.0 - gt.z * gt.z);
    var dc_prev = dc * gt.y;
    if (p.peephole == 1u) {
        dc_prev += peep[3u * k] * dz_i + peep[3u * k + 1u] * dz_f;
    }
    dz[row * h + k] = vec4(dz_i, dz_f, dz_g, dz_o);
    carry[wr + hi] = 0.0;
    carry[wr + ci] = dc_prev;
}

// ---- software adapters (llvmpipe / lavapipe): no workgroup memory, no barriers ----
// Like `step_rows` in lstm_step.wgsl: each of 8 invocations owns 4 consecutive units and
// up to 8 batch rows, keeps their sums in registers and streams q over 4H once.
// Grid: (ceil(H/32), ceil(B/8)), workgroup 8.

@compute @workgroup_size(8)
fn main_rows(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let h = p.hidden;
    let kr = p.k_rec;
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
                wh[u] = w_rec[q * kr + kc[u]];
                if (full) {
                    wc[u] = w_rec[q * kr + h + kc[u]];
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

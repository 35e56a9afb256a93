// lstm_step_backward.wgsl — one fused BPTT step for one layer-direction (or both
// directions of a bidirectional layer, see the grids below): the recurrent
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
//   0 p       uniform  BackwardParams (recurrent_step_backward.wgsl; src/gpu/kernels/lstm_step_backward.rs)
//   1 step    uniform  {t_global, t_local, t_prev (local row of dz_prev), bits}, dynamic offset;
//                      bits: 1 parity, 2 FIRST (no dz_prev), 4 FINAL
//   2 w_rec   [H][4][K]          3 peep  [H][3] (i, f, o)
//   4 gates   [T][B][H] vec4     5 prev  [T][B][2H] (h_{t-1}, c_{t-1})
//   6 lens    [B]                7 dy    [T][B][dy_stride], this direction at dy_offset
//   8 dz      [len + 1][B][H] vec4 (chunk-local rows), written at row t_local, read at
//             row t_prev (the boundary row len holds the previous chunk's last dz)
//   9 carry   [2][2][B][H]: ping-pong halves of (dh, dc); step reads half `parity`
//   (these are one direction's; with both directions per dispatch each holds two blocks)
// Grids: main (ceil(H/16), ceil(B/16)), workgroup 16 units × 4, each thread 4 batch
// rows; main_rows (ceil(H/32), ceil(B/8)) for software adapters (see below). Grid z is
// 1, or 2 for both directions of a bidirectional layer of one chunk in one dispatch
// (buffers in direction blocks: directions.wgsl and recurrent_step_backward.wgsl).
//
// The recurrent product and the bindings are in recurrent_step_backward.wgsl (shared with
// gru_step_backward.wgsl); this file is the LSTM's pointwise half.

// The pointwise half for batch row b, unit k, given the recurrent sums of dz_prev·W_rec.
fn update(b: u32, k: u32, rec_h: f32, rec_c: f32) {
    let h = p.hidden;
    let rd = carry_half(step.bits & PARITY);
    let wr = carry_half(1u - (step.bits & PARITY));
    let hi = b * h + k;
    let ci = (p.batch + b) * h + k;
    let dh_in = carry[rd + hi] + rec_h;
    let dc_in = carry[rd + ci] + rec_c;
    if ((step.bits & FINAL) != 0u) {
        carry[wr + hi] = dh_in;
        carry[wr + ci] = dc_in;
        return;
    }
    let row = t_local() * p.batch + b;
    if (t_global() >= lens[b]) {
        dz[dz_index(row, k)] = vec4(0.0);
        carry[wr + hi] = dh_in;
        carry[wr + ci] = dc_in;
        return;
    }
    var dh = dh_in;
    if (p.has_dy == 1u) {
        dh += dy_at(row, k);
    }
    let gt = gates[gates_index(row, k)];
    let c_prev = prev[prev_index(row, h + k)];
    let tc = tanh_stable(gt.y * c_prev + gt.x * gt.z);
    let dz_o = dh * tc * gt.w * (1.0 - gt.w);
    var dc = dc_in + dh * gt.w * (1.0 - tc * tc);
    if (p.peephole == 1u) {
        dc += peep_at(k, 2u) * dz_o;
    }
    let dz_i = dc * gt.z * gt.x * (1.0 - gt.x);
    let dz_f = dc * c_prev * gt.y * (1.0 - gt.y);
    let dz_g = dc * gt.x * (1.0 - gt.z * gt.z);
    var dc_prev = dc * gt.y;
    if (p.peephole == 1u) {
        dc_prev += peep_at(k, 0u) * dz_i + peep_at(k, 1u) * dz_f;
    }
    dz[dz_index(row, k)] = vec4(dz_i, dz_f, dz_g, dz_o);
    carry[wr + hi] = 0.0;
    carry[wr + ci] = dc_prev;
}

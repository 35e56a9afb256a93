// gru_step_backward.wgsl — one fused GRU BPTT step (reset gate after the recurrent
// product) for one layer-direction (or both, as in lstm_step_backward.wgsl). The
// recurrent product of the previous backward step's dz with W_rec and the bindings are
// recurrent_step_backward.wgsl's, shared with the LSTM. A GRU's gate slots (see gru_step.wgsl) are w_rec = (W_hr, W_hz, W_hn, 0) and
// w_ih = (W_ir, W_iz, 0, W_in), so one dz vec4 serves both sides:
//
//   dz = (∂r_pre, ∂z_pre, ∂a, ∂n_pre)    a = W_hn h + b_hn, the product r scales
//   recurrent: dh_{t-1} = z·dh + Σ_q dz[q]·w_rec[q]   (slot 4 of w_rec is 0)
//   input:     dX = dz·W_ih, dW_ih = dzᵀX, db = Σ dz  (slot 3 of w_ih is 0; b slot 3 = b_hn)
//
//   live (t < lens[b]), dh = carry_h + rec_h + dy[t][b]:
//     ∂n_pre = dh·(1−z)·(1−n²);  ∂z_pre = dh·(h_{t-1} − n)·z(1−z)
//     ∂a = ∂n_pre·r;             ∂r_pre = ∂n_pre·a·r(1−r);   carry_h ← dh·z
//   not live: dz = 0, carry_h ← carry_h + rec_h unchanged (the forward copied h)
//   FINAL (one extra dispatch after the last step): carry_h ← carry_h + rec_h = dh_0
// The c half of `carry` stays 0 (a GRU has no cell state).

fn update(b: u32, k: u32, rec_h: f32, rec_c: f32) {
    let h = p.hidden;
    let rd = carry_half(step.bits & PARITY);
    let wr = carry_half(1u - (step.bits & PARITY));
    let hi = b * h + k;
    let ci = (p.batch + b) * h + k;
    let dh_in = carry[rd + hi] + rec_h;
    carry[wr + ci] = 0.0;
    if ((step.bits & FINAL) != 0u) {
        carry[wr + hi] = dh_in;
        return;
    }
    let row = t_local() * p.batch + b;
    if (t_global() >= lens[b]) {
        dz[dz_index(row, k)] = vec4(0.0);
        carry[wr + hi] = dh_in;
        return;
    }
    var dh = dh_in;
    if (p.has_dy == 1u) {
        dh += dy_at(row, k);
    }
    let g = gates[gates_index(row, k)]; // (r, z, n, a)
    let h_prev = prev[prev_index(row, k)];
    let dn = dh * (1.0 - g.y) * (1.0 - g.z * g.z);
    let dz_pre = dh * (h_prev - g.z) * g.y * (1.0 - g.y);
    let dr = dn * g.w * g.x * (1.0 - g.x);
    dz[dz_index(row, k)] = vec4(dr, dz_pre, dn * g.x, dn);
    carry[wr + hi] = dh * g.y;
}

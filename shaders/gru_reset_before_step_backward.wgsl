// gru_reset_before_step_backward.wgsl — one GRU BPTT step with the reset gate before
// the recurrent product (the backward of gru_reset_before_step.wgsl). With
// d(r⊙h) = W_hnᵀ ∂n_pre, ∂r needs that product over every unit before it can start,
// so a step is two dispatches, bound alike (recurrent_step_backward.wgsl's bindings):
//
//   1. `update`, behind recurrent_step_backward.wgsl's two forms: dh = carry_h +
//      Σ_q dz_prev[q]·w_rec[q] + dy, then
//        ∂n_pre = dh·(1−z)·(1−n²);  ∂z_pre = dh·(h_{t-1} − n)·z(1−z);  carry_h ← dh·z
//      dz = (·, ∂z_pre, 0, ∂n_pre): slot 0 (∂r_pre) is left for dispatch 2; slot 2 is 0
//      so the next step's Σ_q dz·w_rec skips W_hn (its share of dh_{t-1} is d(r⊙h)·r,
//      which dispatch 2 adds to the carry); slot 3 carries ∂n_pre to the input side
//      (w_ih slot 3 = W_in) and to ∂b_hn, ∂W_hn (the weight gradient pairs slot 3 with
//      prev's r ⊙ h half, see backward_job.rs). ∂n_pre also goes, as a plain f32, to
//      the c half of the carry half this step writes (a GRU has no dc): dispatch 2
//      reads it there, not from dz.
//   2. `main_reset_n`, one invocation per (unit k, row b), grid (ceil(H/64), B):
//        d(r⊙h)_k = Σ_j ∂n_pre[j]·W_hn[j][k];  ∂r_pre = d(r⊙h)_k·h_{t-1}·r(1−r)
//        carry_h += d(r⊙h)_k·r
//      It reads every unit's ∂n_pre from the carry's c half and writes only its own
//      dz[row][k] and carry_h[b][k], which no other invocation of the dispatch reads.
//      (Reading ∂n_pre from dz's slot 3 would race with the slot-0 writes: WGSL
//      §14.5.1 lets a write to one component of a vec4 access all four.)
//   Not live (t ≥ lens[b]): dz = 0, the c half 0, and carry_h ← carry_h + rec_h (the
//   forward copied h); dispatch 2 leaves the row alone. FINAL: carry_h ← carry_h + rec_h
//   = dh_0 only, and the c half it writes 0 (it becomes dc_0).
// Gates as the forward cached them: (r, z, n, 0). Every step's `update` writes the c
// half of the half it writes before anything reads it, and no step reads the c half as
// a dc, so the ∂n_pre scratch left there is never taken for one.

fn update(b: u32, k: u32, rec_h: f32, rec_c: f32) {
    let h = p.hidden;
    let rd = carry_half(step.bits & PARITY);
    let wr = carry_half(1u - (step.bits & PARITY));
    let hi = b * h + k;
    let dh_in = carry[rd + hi] + rec_h;
    carry[wr + (p.batch + b) * h + k] = 0.0;
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
    let g = gates[gates_index(row, k)]; // (r, z, n, 0)
    let h_prev = prev[prev_index(row, k)];
    let dn = dh * (1.0 - g.y) * (1.0 - g.z * g.z);
    let dz_pre = dh * (h_prev - g.z) * g.y * (1.0 - g.y);
    dz[dz_index(row, k)] = vec4(0.0, dz_pre, 0.0, dn);
    carry[wr + (p.batch + b) * h + k] = dn;
    carry[wr + hi] = dh * g.y;
}

@compute @workgroup_size(64)
fn main_reset_n(@builtin(global_invocation_id) gid: vec3<u32>) {
    enter_direction(gid); // a workgroup is 1 high in z: gid.z is the workgroup's
    let h = p.hidden;
    let k = gid.x;
    let b = gid.y;
    if (k >= h || b >= p.batch || (step.bits & FINAL) != 0u || t_global() >= lens[b]) {
        return;
    }
    let row = t_local() * p.batch + b;
    let wr = carry_half(1u - (step.bits & PARITY));
    let dn0 = wr + (p.batch + b) * h; // the row's ∂n_pre (dispatch 1)
    var d_rh = 0.0;
    for (var j = 0u; j < h; j++) {
        // W_hn[j][k] is slot 2 of unit j; neighbouring invocations read neighbouring k.
        d_rh = fma(carry[dn0 + j], w_at(w_rec_index(4u * j + 2u, k)), d_rh);
    }
    let r = gates[gates_index(row, k)].x;
    let h_prev = prev[prev_index(row, k)];
    carry[wr + b * h + k] += d_rh * r;
    dz[dz_index(row, k)].x = d_rh * h_prev * r * (1.0 - r);
}

// gru_step.wgsl — one fused GRU time step (PyTorch's nn.GRU, reset gate after the
// recurrent product) for one layer-direction: the recurrent products of all three
// gates, the input projection and biases, the activations and the h update in one
// dispatch. The products and the bindings are recurrent_step.wgsl's, shared with the
// LSTM. A GRU fills the LSTM's four gate slots so that one dz vec4 serves backward
// (gru_step_backward.wgsl): w_rec = (W_hr, W_hz, W_hn, 0), w_ih = (W_ir, W_iz, 0, W_in),
// bias = (b_ir + b_hr, b_iz + b_hz, b_hn, b_in), so
//
//   acc = (W_hr h, W_hz h, W_hn h, 0)          gx = (x·W_irᵀ + b_ir + b_hr,
//                                                     x·W_izᵀ + b_iz + b_hz, b_hn, x·W_inᵀ + b_in)
//   r = σ(gx.x + acc.x);  z = σ(gx.y + acc.y);  a = acc.z + gx.z;  n = tanh(gx.w + r·a)
//   h_t = n + z·(h_{t-1} − n)
//   Past a sequence's length (t ≥ lens[b]) h is copied unchanged and the output is 0.
//   Training (p.save_cache = 1) stores the gates (r, z, n, a) (what backward needs;
//   0 past a length) and h_{t-1}.
//
// Bindings as in lstm_step.wgsl; `peep` is unused, and the c half of `state` and of
// `prev` stays 0 (a GRU has no cell state; the LSTM's layout is kept so that one
// schedule serves both).

fn cell_update(b: u32, j: u32, acc: vec4<f32>) {
    let h_idx = b * p.hidden + j;
    let c_idx = (p.batch + b) * p.hidden + j;
    let h_prev = state_get(read_base() + h_idx);
    let g = gx_at(b, j);
    let r = sigmoid(g.x + acc.x);
    let z = sigmoid(g.y + acc.y);
    let a = acc.z + g.z;
    let n = tanh_stable(g.w + r * a);
    let h_new = n + z * (h_prev - n);
    let live = p.t_base + local_t() < lens[b];
    state_set(write_base() + h_idx, select(h_prev, h_new, live));
    state_set(write_base() + c_idx, 0.0);
    let row = local_t() * p.batch + b;
    y[y_index(row, j)] = select(0.0, h_new, live);
    if (p.save_cache == 1u) {
        gates[gates_index(row, j)] = select(vec4(0.0), vec4(r, z, n, a), live);
        prev[prev_index(row, j)] = h_prev;
        prev[prev_index(row, j) + p.hidden] = 0.0;
    }
}

// lstm_step.wgsl — one fused LSTM time step for one layer-direction: the recurrent
// matmul for all four gates, the input projection and bias, the peepholes, the
// activations and the c/h update, in one dispatch with no pointwise pass after it.
//
//   z[b, j, g] = gx[t][b][j][g] + Σ_k s[b][k] · w_rec[j][g][k]
//                s = h_{t-1} (K = H), or [h_{t-1}; c_{t-1}] for Full peepholes (K = 2H)
//   Diagonal:    z_i += p_i·c_{t-1};  z_f += p_f·c_{t-1};  z_o += p_o·c_t
//   c_t = σ(z_f)·c_{t-1} + σ(z_i)·tanh(z_g);   h_t = σ(z_o)·tanh(c_t)
//   Past a sequence's length (t ≥ lens[b]) its state is copied unchanged and its output is 0.
//   Training (p.save_cache = 1) also stores what backward needs: the four gate
//   activations and the previous (h, c) of every step; past a length the gates are 0.
//
// Bindings:
//   0 p          uniform  sizes (StepParams in src/gpu/kernels/lstm_step.rs)
//   1 step       uniform  {t_local, parity, from_zero}, one entry per step of a chunk at
//                         a dynamic offset; the chunk's uniform adds t_base and flips the
//                         parity; from_zero skips the products (a first step from zeros)
//   2 w_rec      [H][4][K]  recurrent weights, the 4 gate rows of a unit adjacent
//   3 peep       [H][3]     diagonal peepholes (i, f, o); a dummy otherwise
//   4 gx         [Tc][B][H] vec4 input projection of this chunk, gates (i, f, g, o)
//   5 lens       [B]        valid length of each sequence
//   6 state      [2][2][B][H]  two ping-pong halves, each an h block then a c block;
//                           step reads half `parity` and writes the other
//   7 y          [Tc][B][out_stride]  this direction's columns start at out_offset
//   (With both directions of a layer in one dispatch, w_rec, peep, gx and state hold
//   the two directions, and in training gates and prev hold them in blocks of
//   p.cache_stride entries: see recurrent_step.wgsl's `enter_direction`.)
//   8 gates      [Tc][B][H] vec4  (i, f, g, o) after activation   (training only)
//   9 prev       [Tc][B][2H]      (h_{t-1}, c_{t-1})              (training only)
//
// Two tilings of the same step (the host picks by batch size):
//   step_gemv   grid (ceil(H/2), ceil(B/4)):  small batch. 32 threads split the K
//               reduction of each unit, then a tree reduction (`lanes_sum`): in
//               workgroup memory, its levels within a subgroup as shuffles where
//               the adapter has subgroups (lanes_subgroup.wgsl).
//   step_tiled  grid (ceil(H/16), ceil(B/16)): large batch. A 16-unit × 16-row tile,
//               weights and state staged through workgroup memory in K-slices of 16,
//               each thread accumulating 4 gates × 4 batch rows in registers.
//
// The recurrent product and the bindings are in recurrent_step.wgsl (shared with
// gru_step.wgsl); this file is the LSTM's pointwise half.

// The pointwise half of the step for unit j of batch row b; `acc` holds the four
// recurrent dot products (i, f, g, o).
fn cell_update(b: u32, j: u32, acc: vec4<f32>) {
    let h_idx = b * p.hidden + j;
    let c_idx = (p.batch + b) * p.hidden + j;
    let h_prev = state_get(read_base() + h_idx);
    let c_prev = state_get(read_base() + c_idx);
    var z = acc + gx_at(b, j);
    if (p.peephole == 1u) {
        z.x += peep_at(j, 0u) * c_prev;
        z.y += peep_at(j, 1u) * c_prev;
    }
    let i = sigmoid(z.x);
    let f = sigmoid(z.y);
    let g = tanh_stable(z.z);
    let c_new = f * c_prev + i * g;
    if (p.peephole == 1u) {
        z.w += peep_at(j, 2u) * c_new;
    }
    let o = sigmoid(z.w);
    let h_new = o * tanh_stable(c_new);
    let live = p.t_base + local_t() < lens[b];
    state_set(write_base() + h_idx, select(h_prev, h_new, live));
    state_set(write_base() + c_idx, select(c_prev, c_new, live));
    let row = local_t() * p.batch + b;
    y[y_index(row, j)] = select(0.0, h_new, live);
    if (p.save_cache == 1u) {
        gates[gates_index(row, j)] = select(vec4(0.0), vec4(i, f, g, o), live);
        prev[prev_index(row, j)] = h_prev;
        prev[prev_index(row, j) + p.hidden] = c_prev;
    }
}

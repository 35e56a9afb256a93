// gru_reset_before_step.wgsl — one GRU time step with the reset gate before the
// recurrent product (Keras reset_after=False, ONNX linear_before_reset=0):
//
//   r = σ(gx_r + W_hr h);  z = σ(gx_z + W_hz h);  n = tanh(gx_n + b_hn + W_hn (r ⊙ h))
//   h_t = n + z·(h_{t-1} − n)
//
// n's product needs r ⊙ h of every unit of the row before it can start, which the
// LSTM's per-unit fused step cannot give (a unit's invocation sees only its own r).
// So a step is two dispatches, bound alike (recurrent_step.wgsl's bindings):
//
//   1. `cell_update`, behind recurrent_step.wgsl's four tuned forms: the same
//      (W_hr h, W_hz h, W_hn h, 0) product as gru_step.wgsl (slot 2 is computed and
//      dropped: the forms run a vec4 per k anyway, so it costs nothing), then r, z and
//      r ⊙ h. Scratch lives where the GRU has room: r ⊙ h goes to the c half of the
//      state half this step READS (a GRU never reads its c; the next step writes
//      that half and zeroes it), z to the h slot this step writes (dispatch 2 reads it
//      back and overwrites it with h_t).
//   2. the n product over the row's r ⊙ h, n and h_t (`reset_n_update`), in the form
//      that goes with the tiling of dispatch 1:
//        step_reset_n       (gemv, tiled) step_gemv's split-K shape: 2 units × 4 rows a
//                           workgroup, 32 lanes per unit over k, grid (ceil(H/2),
//                           ceil(B/4)): neighbouring lanes read neighbouring weights;
//        step_reset_n_rows  (units, rows: software adapters) 8 invocations of 4 units ×
//                           up to 8 rows each, grid (ceil(H/32), ceil(B/8)): a weight
//                           loaded once serves 8 rows, an r ⊙ h value 4 units (see
//                           recurrent_step.wgsl's software section for why that pays).
//      (Separate dispatches are the only portable barrier across workgroups; one
//      workgroup per row would cap H by the workgroup memory and leave a GPU idle at
//      small B.)
//
// Weights as gru_step.wgsl's slots: w_rec = (W_hr, W_hz, W_hn, 0), gx = (x·W_irᵀ + b_ir
// + b_hr, x·W_izᵀ + b_iz + b_hz, b_hn, x·W_inᵀ + b_in). Past a length (t ≥ lens[b]) h is
// copied and the output is 0. Training (save_cache = 1) stores gates (r, z, n, 0) (0
// past a length; the 0 matches cpu::gru_step, whose `a` slot is unused in this form)
// and prev = (h_{t-1}, r ⊙ h_{t-1}): r ⊙ h is the operand of ∂W_hn.

fn cell_update(b: u32, j: u32, acc: vec4<f32>) {
    let h_idx = b * p.hidden + j;
    let c_idx = (p.batch + b) * p.hidden + j;
    let h_prev = state_get(read_base() + h_idx);
    let g = gx_at(b, j);
    let r = sigmoid(g.x + acc.x);
    let z = sigmoid(g.y + acc.y);
    let rh = r * h_prev;
    state_set(read_base() + c_idx, rh);
    state_set(write_base() + h_idx, z);
    if (p.save_cache == 1u) {
        let row = local_t() * p.batch + b;
        gates[gates_index(row, j)] = vec4(r, z, 0.0, 0.0);
        prev[prev_index(row, j)] = h_prev;
        prev[prev_index(row, j) + p.hidden] = rh;
    }
}

// step_gemv's split-K shape: a workgroup holds GEMV_UNITS units × GEMV_ROWS rows, its
// GEMV_LANES lanes per unit taking k = lane, lane + GEMV_LANES, … so neighbouring
// invocations read neighbouring floats of W_hn's row (one invocation per unit walking
// its whole row would read rows 4·K floats apart), then a tree sum per (unit, row).
@compute @workgroup_size(64)
fn step_reset_n(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    enter_direction(wg);
    let u = li / GEMV_LANES;
    let lane = li % GEMV_LANES;
    let j = wg.x * GEMV_UNITS + u;
    let b0 = wg.y * GEMV_ROWS;
    let kr = p.k_rec;
    var acc: array<f32, 4>; // [GEMV_ROWS]
    if (j < p.hidden) {
        let w0 = unit_row(j) + 2u * kr; // W_hn's row j: slot 2 of unit j
        let s0 = read_base() + (p.batch + b0) * p.hidden; // the rows' r ⊙ h (dispatch 1)
        for (var k = lane; k < k_end(); k += GEMV_LANES) {
            let w = w_at(w0 + k);
            for (var r = 0u; r < GEMV_ROWS; r++) {
                if (b0 + r < p.batch) {
                    acc[r] = fma(w, state_get(s0 + r * p.hidden + k), acc[r]);
                }
            }
        }
    }
    // lanes_sum (recurrent_step.wgsl) sums vec4s: each row's sum rides in x.
    var sums: array<vec4<f32>, 4>;
    for (var r = 0u; r < GEMV_ROWS; r++) {
        sums[r] = vec4(acc[r], 0.0, 0.0, 0.0);
    }
    let sum = lanes_sum(u, lane, &sums);
    let b = b0 + lane;
    if (lane < GEMV_ROWS && j < p.hidden && b < p.batch) {
        reset_n_update(b, j, sum.x);
    }
}

@compute @workgroup_size(8)
fn step_reset_n_rows(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    enter_direction(wg);
    let j0 = (wg.x * 8u + li) * 4u;
    let b0 = wg.y * 8u;
    let nrows = min(8u, p.batch - b0);
    let kr = p.k_rec;
    // W_hn's rows of the 4 units, clamped so every load stays in bounds (extra units
    // are dropped), and where the rows' r ⊙ h start.
    var w0: array<u32, 4>;
    for (var u = 0u; u < 4u; u++) {
        w0[u] = unit_row(min(j0 + u, p.hidden - 1u)) + 2u * kr;
    }
    let s0 = read_base() + (p.batch + b0) * p.hidden;
    var acc: array<vec4<f32>, 8>; // [row], the 4 units as a vec4
    for (var k = 0u; k < k_end(); k++) {
        let w = vec4(w_at(w0[0] + k), w_at(w0[1] + k), w_at(w0[2] + k), w_at(w0[3] + k));
        for (var r = 0u; r < 8u; r++) {
            if (r < nrows) {
                acc[r] = fma(w, vec4(state_get(s0 + r * p.hidden + k)), acc[r]);
            }
        }
    }
    for (var r = 0u; r < nrows; r++) {
        for (var u = 0u; u < 4u; u++) {
            if (j0 + u < p.hidden) {
                reset_n_update(b0 + r, j0 + u, acc[r][u]);
            }
        }
    }
}

// n and h_t of unit j of row b from acc = W_hn (r ⊙ h) (z waits in the written h slot).
fn reset_n_update(b: u32, j: u32, acc: f32) {
    let h_idx = b * p.hidden + j;
    let h_prev = state_get(read_base() + h_idx);
    let z = state_get(write_base() + h_idx);
    let g = gx_at(b, j);
    let n = tanh_stable(g.w + g.z + acc);
    let h_new = n + z * (h_prev - n);
    let live = p.t_base + local_t() < lens[b];
    state_set(write_base() + h_idx, select(h_prev, h_new, live));
    state_set(write_base() + (p.batch + b) * p.hidden + j, 0.0);
    let row = local_t() * p.batch + b;
    y[y_index(row, j)] = select(0.0, h_new, live);
    if (p.save_cache == 1u) {
        let r = gates[gates_index(row, j)].x;
        gates[gates_index(row, j)] = select(vec4(0.0), vec4(r, z, n, 0.0), live);
    }
}

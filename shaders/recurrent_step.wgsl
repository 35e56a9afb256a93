// recurrent_step.wgsl — what every recurrent cell's fused step shares: the uniforms,
// the bindings, the state ping-pong and the four forms of the recurrent product
// acc[g] = Σ_k s[b][k] · w_rec[j][g][k] (g = 0..3) for hidden unit j of batch row b.
// Each form ends by calling `cell_update(b, j, acc)`, the cell's pointwise half, which
// the cell's own shader defines: lstm_step.wgsl (i, f, g, o), gru_step.wgsl (r, z, n) or
// gru_reset_before_step.wgsl (r, z and r ⊙ h; its second dispatch finishes the step).
// The host compiles activations.wgsl + weights_f32.wgsl (or weights_f16.wgsl) +
// state_f32.wgsl + lanes_portable.wgsl (or lanes_subgroup.wgsl) + <cell>_step.wgsl +
// this file as one module (step_quads.wgsl's module: weights_f32x4.wgsl or
// weights_f16.wgsl, state_f32x4.wgsl, lanes_portable.wgsl, and step_quads after this).
// Bindings, the grids of the forms and the cache layout: see lstm_step.wgsl's header.

struct StepParams {
    batch: u32,
    hidden: u32,
    k_rec: u32,
    peephole: u32, // 0 none, 1 diagonal, 2 full
    out_stride: u32,
    out_offset: u32,
    save_cache: u32,
    // This chunk's first time step, and its parity flip (step s of a direction reads
    // state half (s % 2) ^ parity_flip): with them one index table of chunk length
    // serves every chunk, so a sequence of any length needs a table of one chunk.
    t_base: u32,
    parity_flip: u32,
    // 1, or 2 when both directions of a bidirectional layer run in one dispatch (grid
    // z = 2, see `enter_direction`): gx is then [Tc][B][2][H] vec4, one GEMM's output.
    gx_dirs: u32,
    // The chunk's step count: the reverse direction of such a dispatch steps through
    // the chunk from its end.
    chunk_len: u32,
    // Training with both directions in a dispatch: the cache holds them in blocks of
    // this many (row, unit) entries (`gates_index`, `prev_index`); 0 otherwise.
    cache_stride: u32,
}

struct StepIndex {
    t_local: u32,
    parity: u32,
    // 1 for a direction's first step from an all-zero state: every recurrent product
    // is then +0, as the accumulators already are (w · ±0 + +0 = +0 for a finite w;
    // uploads check that), so the forms skip the products (`k_end`): the same bits.
    from_zero: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<uniform> step: StepIndex;
// binding 2, w_rec, and its reader w_at(i): weights_f32.wgsl or weights_f16.wgsl.
@group(0) @binding(3) var<storage, read> peep: array<f32>;
@group(0) @binding(4) var<storage, read> gx: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> lens: array<u32>;
// binding 6, state, and its accessors state_get / state_set: state_f32.wgsl or
// state_f32x4.wgsl.
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<storage, read_write> gates: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> prev: array<f32>;

// The direction this workgroup steps (`dir`, `enter_direction`: directions.wgsl). With
// both directions in a dispatch (p.gx_dirs = 2) `state` is [2][2][2][B][H], `gx` holds
// both directions in each row and `y`'s columns are as ever; direction 1 walks the
// chunk backwards from the step index the forward direction gets: one dispatch per
// time step of the layer instead of two.

// The chunk-local time step this invocation computes.
fn local_t() -> u32 {
    return select(step.t_local, p.chunk_len - 1u - step.t_local, dir == 1u);
}

// Where the recurrent products' k loops end: K, or 0 on a step from a zero state.
fn k_end() -> u32 {
    return select(p.k_rec, 0u, step.from_zero == 1u);
}

// Start of the half of `state` this step reads, and of the half it writes.
fn read_base() -> u32 {
    return (2u * dir + (step.parity ^ p.parity_flip)) * 2u * p.batch * p.hidden;
}
fn write_base() -> u32 {
    return (2u * dir + 1u - (step.parity ^ p.parity_flip)) * 2u * p.batch * p.hidden;
}

// Element index in `w_rec` of unit j's first gate row.
fn unit_row(j: u32) -> u32 {
    return (dir * p.hidden + j) * 4u * p.k_rec;
}

// The input projection (+ bias) of unit j of batch row b at this step, four gates.
fn gx_at(b: u32, j: u32) -> vec4<f32> {
    return gx[((local_t() * p.batch + b) * p.gx_dirs + dir) * p.hidden + j];
}

// Where unit j of output row `row` (local step · B + batch row) goes in `y`.
fn y_index(row: u32, j: u32) -> u32 {
    return row * p.out_stride + p.out_offset + dir * p.hidden + j;
}


// sigmoid and tanh_stable come from activations.wgsl, prepended at compile time.

// Element k of the recurrent operand of batch row b: h for k < H, c for k ≥ H.
fn operand(b: u32, k: u32) -> f32 {
    if (k < p.hidden) {
        return state_get(read_base() + b * p.hidden + k);
    }
    return state_get(read_base() + (p.batch + b) * p.hidden + (k - p.hidden));
}

// ---- small batch: split-K GEMV -------------------------------------------------

const GEMV_UNITS: u32 = 2u;
const GEMV_LANES: u32 = 32u;
const GEMV_ROWS: u32 = 4u;
const_assert GEMV_ROWS == 4u; // lanes_sum picks a row by selects among four
// Lanes below SHUFFLE_BELOW return finished sums: they must hold every row's.
const_assert SHUFFLE_BELOW == 1u || SHUFFLE_BELOW >= GEMV_ROWS;

var<workgroup> partial: array<vec4<f32>, 256>; // [GEMV_UNITS][GEMV_ROWS][GEMV_LANES]

@compute @workgroup_size(64)
fn step_gemv(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    enter_direction(wg);
    let u = li / GEMV_LANES;
    let lane = li % GEMV_LANES;
    let j = wg.x * GEMV_UNITS + u;
    let b0 = wg.y * GEMV_ROWS;
    let kr = p.k_rec;
    var acc: array<vec4<f32>, 4>;
    if (j < p.hidden) {
        let row = unit_row(j);
        for (var k = lane; k < k_end(); k += GEMV_LANES) {
            let w = vec4(w_at(row + k), w_at(row + kr + k), w_at(row + 2u * kr + k), w_at(row + 3u * kr + k));
            for (var r = 0u; r < GEMV_ROWS; r++) {
                if (b0 + r < p.batch) {
                    acc[r] = fma(w, vec4(operand(b0 + r, k)), acc[r]);
                }
            }
        }
    }
    let sum = lanes_sum(u, lane, &acc);
    let b = b0 + lane;
    if (lane < GEMV_ROWS && j < p.hidden && b < p.batch) {
        cell_update(b, j, sum);
    }
}

// Sums each (unit u, row r) partial over the unit's GEMV_LANES lanes as a tree: level s
// (16, 8, …, 1) adds lane + s into lane. The levels s ≥ SHUFFLE_BELOW go through
// workgroup memory; those below are subgroup shuffles (lanes_subgroup.wgsl; none in
// lanes_portable.wgsl). A shuffle-xor level leaves every lane of an aligned block with
// the bits the tree leaves in the block's first lane (a + b = b + a exactly), so both
// forms add in the same order. Returns row `lane`'s sum (lanes < GEMV_ROWS use it).
// Every invocation of the workgroup must call this (barriers, shuffles).
fn lanes_sum(u: u32, lane: u32, sums: ptr<function, array<vec4<f32>, 4>>) -> vec4<f32> {
    let row = min(lane, GEMV_ROWS - 1u);
    if (SHUFFLE_BELOW < GEMV_LANES) {
        for (var r = 0u; r < GEMV_ROWS; r++) {
            partial[(u * GEMV_ROWS + r) * GEMV_LANES + lane] = (*sums)[r];
        }
        workgroupBarrier();
        for (var s = GEMV_LANES / 2u; s >= SHUFFLE_BELOW; s >>= 1u) {
            if (lane < s) {
                for (var r = 0u; r < GEMV_ROWS; r++) {
                    let i = (u * GEMV_ROWS + r) * GEMV_LANES + lane;
                    partial[i] += partial[i + s];
                }
            }
            workgroupBarrier();
        }
        if (SHUFFLE_BELOW == 1u) {
            return partial[(u * GEMV_ROWS + row) * GEMV_LANES]; // every level done
        }
        for (var r = 0u; r < GEMV_ROWS; r++) {
            (*sums)[r] = partial[(u * GEMV_ROWS + r) * GEMV_LANES + lane];
        }
    }
    for (var s = SHUFFLE_BELOW / 2u; s > 0u; s >>= 1u) {
        for (var r = 0u; r < GEMV_ROWS; r++) {
            (*sums)[r] += shuffle_xor((*sums)[r], s);
        }
    }
    // Selects, not sums[row]: an array indexed by a lane-varying value would live in
    // memory (local memory on a GPU, emulated loads on llvmpipe) for the whole k loop.
    let low = select((*sums)[0], (*sums)[1], row == 1u);
    let high = select((*sums)[2], (*sums)[3], row == 3u);
    return select(low, high, row >= 2u);
}

// ---- large batch: register-blocked tile ----------------------------------------

const TILE_UNITS: u32 = 16u;
const TILE_ROWS: u32 = 16u;
const TILE_K: u32 = 16u;

var<workgroup> w_tile: array<vec4<f32>, 256>; // [TILE_K][TILE_UNITS], the 4 gates as a vec4
var<workgroup> s_tile: array<f32, 256>; // [TILE_K][TILE_ROWS]

@compute @workgroup_size(16, 4)
fn step_tiled(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    enter_direction(wg);
    let j0 = wg.x * TILE_UNITS;
    let b0 = wg.y * TILE_ROWS;
    let kr = p.k_rec;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < k_end(); k0 += TILE_K) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + 64u * i;
            let kk = e % TILE_K;
            let k = k0 + kk;
            let jj = j0 + e / TILE_K;
            var w = vec4(0.0);
            if (jj < p.hidden && k < kr) {
                let row = unit_row(jj) + k;
                w = vec4(w_at(row), w_at(row + kr), w_at(row + 2u * kr), w_at(row + 3u * kr));
            }
            w_tile[kk * TILE_UNITS + e / TILE_K] = w;
            let b = b0 + e / TILE_K;
            var s = 0.0;
            if (b < p.batch && k < kr) {
                s = operand(b, k);
            }
            s_tile[kk * TILE_ROWS + e / TILE_K] = s;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let w = w_tile[kk * TILE_UNITS + lid.x];
            for (var r = 0u; r < 4u; r++) {
                acc[r] = fma(w, vec4(s_tile[kk * TILE_ROWS + lid.y + 4u * r]), acc[r]);
            }
        }
        workgroupBarrier();
    }
    let j = j0 + lid.x;
    for (var r = 0u; r < 4u; r++) {
        let b = b0 + lid.y + 4u * r;
        if (j < p.hidden && b < p.batch) {
            cell_update(b, j, acc[r]);
        }
    }
}

// ---- software adapters (llvmpipe / lavapipe): no workgroup memory, no barriers ----
//
// A CPU "GPU" runs 8 (AVX2) invocations of a workgroup as one SIMD vector. There, a
// load or store from a buffer or workgroup memory is a loop over the 8 lanes with a
// bounds check per lane (Mesa 22's llvmpipe takes no shortcut even for addresses that
// are the same in every lane), while an FMA is one instruction, and registers that
// spill go to the stack at the cost of a plain vector load. Barriers switch
// coroutines. So the cheapest schedule gives each invocation a block of outputs held
// in registers: per k it loads units·4 weights and up to 8 state values and does up
// to units·4·8 FMAs, with no workgroup memory at all.
//
// Workgroup: 8 invocations, each owning 4 consecutive hidden units (16 gate rows) and
// `rows` batch rows. Rows past the batch are skipped whole (the same for every lane: no
// masked loads). (One unit per lane at small batch measured 1.5× slower: 8 lanes × 16
// gate rows stream the weights in fewer, longer runs.)
//
//   step_units  grid (ceil(H/32), ceil(B/4)): small batch, 4 rows per workgroup.
//   step_rows   grid (ceil(H/32), ceil(B/8)): large batch, 8 rows per workgroup.

fn step_block(li: u32, wg: vec3<u32>, rows: u32) {
    let units = 4u;
    let j0 = (wg.x * 8u + li) * units;
    let b0 = wg.y * rows;
    let nrows = min(rows, p.batch - b0);
    let kr = p.k_rec;
    let hid = p.hidden;
    // Clamped so that every load stays in bounds; the results of clamped units are dropped.
    var base: array<u32, 4>;
    for (var u = 0u; u < units; u++) {
        base[u] = unit_row(min(j0 + u, hid - 1u));
    }
    // Where each batch row's operand starts; element k of it is at `+ k` for the h
    // block and `+ k - H + B·H` for the c block (Full peepholes, k ≥ H).
    var srow: array<u32, 8>;
    let sb = read_base();
    for (var r = 0u; r < rows; r++) {
        srow[r] = sb + min(b0 + r, p.batch - 1u) * hid;
    }
    let c_shift = p.batch * hid - hid;
    var acc: array<array<vec4<f32>, 4>, 8>; // [row][unit]
    for (var k = 0u; k < k_end(); k++) {
        var w: array<vec4<f32>, 4>;
        for (var u = 0u; u < units; u++) {
            let r0 = base[u] + k;
            w[u] = vec4(w_at(r0), w_at(r0 + kr), w_at(r0 + 2u * kr), w_at(r0 + 3u * kr));
        }
        let kk = select(k, k + c_shift, k >= hid);
        for (var r = 0u; r < rows; r++) {
            if (r < nrows) {
                let s = vec4(state_get(srow[r] + kk));
                for (var u = 0u; u < units; u++) {
                    acc[r][u] = fma(w[u], s, acc[r][u]);
                }
            }
        }
    }
    for (var r = 0u; r < nrows; r++) {
        for (var u = 0u; u < units; u++) {
            if (j0 + u < hid) {
                cell_update(b0 + r, j0 + u, acc[r][u]);
            }
        }
    }
}

@compute @workgroup_size(8)
fn step_units(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    enter_direction(wg);
    step_block(li, wg, 4u);
}

@compute @workgroup_size(8)
fn step_rows(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    enter_direction(wg);
    step_block(li, wg, 8u);
}

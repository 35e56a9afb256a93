// lstm_param_grads.wgsl — the parameter gradients that are sums over all T·B rows but
// not products: the bias and the diagonal peepholes. One thread per hidden unit j sums
// its rows in a fixed order, so the result is bit-identical run to run.
//
//   db[4j + g] = Σ_r dz[r][j][g]                           (bias, unit-interleaved)
//   dp[3j]     = Σ_r dz_i · c_{t-1}   dp[3j+1] = Σ_r dz_f · c_{t-1}
//   dp[3j+2]   = Σ_r dz_o · c_t       with c_t = f·c_{t-1} + i·g   (Diagonal only)
//
//   With p.accumulate = 1 the sums are added to db and dp instead of written (a
//   sequence trained in chunks sums its chunks). Row 0 starts at entry p.dz_at of dz and
//   p.cache_at of gates and prev (a direction's block of a shared buffer; 0 otherwise).
//
// Bindings: 0 p {rows, hidden, peephole, accumulate, row_chunk, dz_at, cache_at}, 1 dz [R][H] vec4,
//           2 gates [R][H] vec4, 3 prev [R][2H], 4 db [4H], 5 dp [3H] (a dummy unless Diagonal)
// Grid: (ceil(H/64)).
//
// Split over rows (row_chunk > 0; the host's choice on hardware GPUs when R is long and
// H/64 workgroups would leave the GPU idle): grid (ceil(H/64), slices); workgroup y sums
// rows [y·row_chunk, (y+1)·row_chunk) into slice y of scratch db [slices][H] vec4 and
// dp [slices][H][3] (no accumulate); then `sum_slices` adds the slices in y order into
// the real db and dp (accumulating as p says). Still one fixed order: deterministic.

struct GradParams {
    rows: u32,
    hidden: u32,
    peephole: u32,
    accumulate: u32,
    // `main`: rows per slice (0: all rows, no split). `sum_slices`: the slice count.
    row_chunk: u32,
    // Where row 0 starts: in vec4 entries of dz, in entries of one unit of gates (a vec4)
    // and prev (a pair of floats).
    dz_at: u32,
    cache_at: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: GradParams;
@group(0) @binding(1) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gates: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> prev: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let j = gid.x;
    if (j >= p.hidden) {
        return;
    }
    var r_begin = 0u;
    var r_stop = p.rows;
    if (p.row_chunk > 0u) {
        r_begin = wg.y * p.row_chunk;
        r_stop = min(r_begin + p.row_chunk, p.rows);
    }
    var sb = vec4(0.0);
    var sp = vec3(0.0);
    for (var r = r_begin; r < r_stop; r++) {
        let d = dz[p.dz_at + r * p.hidden + j];
        sb += d;
        if (p.peephole == 1u) {
            let g = gates[p.cache_at + r * p.hidden + j];
            let c_prev = prev[2u * p.cache_at + r * 2u * p.hidden + p.hidden + j];
            let c_new = g.y * c_prev + g.x * g.z;
            sp += vec3(d.x * c_prev, d.y * c_prev, d.w * c_new);
        }
    }
    write_sums(wg.y * p.hidden + j, sb, sp); // slice y's unit j (y = 0 unsplit)
}

// The second dispatch of a split `main`: dz holds the slices' db, prev their dp (from
// entry 0), and p.row_chunk their count. Grid (ceil(H/64)).
@compute @workgroup_size(64)
fn sum_slices(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.hidden) {
        return;
    }
    var sb = vec4(0.0);
    var sp = vec3(0.0);
    for (var y = 0u; y < p.row_chunk; y++) {
        let at = y * p.hidden + j;
        sb += dz[at];
        if (p.peephole == 1u) {
            sp += vec3(prev[3u * at], prev[3u * at + 1u], prev[3u * at + 2u]);
        }
    }
    write_sums(j, sb, sp);
}

// Writes (or, with p.accumulate, adds) unit slot `at`'s sums.
fn write_sums(at: u32, sums_b: vec4<f32>, sums_p: vec3<f32>) {
    var sb = sums_b;
    var sp = sums_p;
    if (p.accumulate == 1u) {
        sb += db[at];
        if (p.peephole == 1u) {
            sp += vec3(dp[3u * at], dp[3u * at + 1u], dp[3u * at + 2u]);
        }
    }
    db[at] = sb;
    if (p.peephole == 1u) {
        dp[3u * at] = sp.x;
        dp[3u * at + 1u] = sp.y;
        dp[3u * at + 2u] = sp.z;
    }
}

// lstm_param_grads.wgsl — the parameter gradients that are sums over all T·B rows but
// not products: the bias and the diagonal peepholes. One thread per hidden unit j sums
// its rows in a fixed order, so the result is bit-identical run to run.
//
//   db[4j + g] = Σ_r dz[r][j][g]                           (bias, unit-interleaved)
//   dp[3j]     = Σ_r dz_i · c_{t-1}   dp[3j+1] = Σ_r dz_f · c_{t-1}
//   dp[3j+2]   = Σ_r dz_o · c_t       with c_t = f·c_{t-1} + i·g   (Diagonal only)
//
//   With p.accumulate = 1 the sums are added to db and dp instead of written (a
//   sequence trained in chunks sums its chunks).
//
// Bindings: 0 p {rows, hidden, peephole, accumulate}, 1 dz [R][H] vec4, 2 gates [R][H] vec4,
//           3 prev [R][2H], 4 db [4H], 5 dp [3H] (a dummy unless Diagonal)
// Grid: (ceil(H/64)).

struct GradParams {
    rows: u32,
    hidden: u32,
    peephole: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: GradParams;
@group(0) @binding(1) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gates: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> prev: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dp: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.hidden) {
        return;
    }
    var sb = vec4(0.0);
    var sp = vec3(0.0);
    for (var r = 0u; r < p.rows; r++) {
        let d = dz[r * p.hidden + j];
        sb += d;
        if (p.peephole == 1u) {
            let g = gates[r * p.hidden + j];
            let c_prev = prev[r * 2u * p.hidden + p.hidden + j];
            let c_new = g.y * c_prev + g.x * g.z;
            sp += vec3(d.x * c_prev, d.y * c_prev, d.w * c_new);
        }
    }
    if (p.accumulate == 1u) {
        sb += db[j];
        if (p.peephole == 1u) {
            sp += vec3(dp[3u * j], dp[3u * j + 1u], dp[3u * j + 2u]);
        }
    }
    db[j] = sb;
    if (p.peephole == 1u) {
        dp[3u * j] = sp.x;
        dp[3u * j + 1u] = sp.y;
        dp[3u * j + 2u] = sp.z;
    }
}

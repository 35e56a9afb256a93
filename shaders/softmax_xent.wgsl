// softmax_xent.wgsl — numerically stable softmax cross-entropy per row, its gradient,
// and whether the row's argmax is right. One workgroup per row.
//
//   m = max_c z[r, c];  s = Σ_c exp(z[r, c] − m);  log p_c = z[r, c] − m − log s
//   stats[r]    = (−log p_target · w_r,  w_r · [argmax_c z[r, c] == target])
//   dz[r, c]    = (p_c − [c == target]) · w_r · scale        (scale = 1 / Σ_r w_r)
// w_r is 1 for a counted row and 0 for padding (many-to-many past a sequence's length).
//
// Bindings: 0 p {rows, classes, scale}, 1 logits [R, C], 2 targets u32 [R],
//           3 weights [R], 4 dlogits [R, C], 5 stats [R][2]
// Grid: (R), workgroup 64.

struct XentParams {
    rows: u32,
    classes: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;
var<workgroup> red_v: array<f32, 64>;
var<workgroup> red_i: array<u32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let r = wg.x;
    let base = r * p.classes;
    // max and argmax (lowest index wins ties, as in numpy/torch argmax)
    var best = -3.4e38;
    var best_i = 0u;
    for (var c = li; c < p.classes; c += WG) {
        let v = logits[base + c];
        if (v > best) {
            best = v;
            best_i = c;
        }
    }
    red_v[li] = best;
    red_i[li] = best_i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            let v = red_v[li + s];
            let i = red_i[li + s];
            if (v > red_v[li] || (v == red_v[li] && i < red_i[li])) {
                red_v[li] = v;
                red_i[li] = i;
            }
        }
        workgroupBarrier();
    }
    let m = red_v[0];
    let arg = red_i[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var c = li; c < p.classes; c += WG) {
        sum += exp(logits[base + c] - m);
    }
    red_v[li] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red_v[li] += red_v[li + s];
        }
        workgroupBarrier();
    }
    let log_s = log(red_v[0]);
    let w = weights[r];
    let label = targets[r];
    for (var c = li; c < p.classes; c += WG) {
        let prob = exp(logits[base + c] - m - log_s);
        dlogits[base + c] = (prob - select(0.0, 1.0, c == label)) * w * p.scale;
    }
    if (li == 0u) {
        let nll = -(logits[base + label] - m - log_s);
        stats[2u * r] = nll * w;
        stats[2u * r + 1u] = select(0.0, w, arg == label);
    }
}

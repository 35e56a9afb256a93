// optimizer_update.wgsl — parameter updates on the GPU: gradient clipping by global norm,
// weight decay, Adam and SGD with momentum. Parameters, gradients and optimizer state
// never leave the GPU.
//
// sum_squares: one workgroup per tensor writes norms[slot] = Σ g² (fixed order: deterministic).
// update:      per element, with the clip factor k = min(1, max_norm / (√Σ_slots norms + 1e-6))
//              (k = 1 when max_norm ≤ 0):
//   g ← k·g + weight_decay·θ                                         (L2, as torch.optim)
//   Adam: m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//         θ ← θ − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε)
//   SGD:  m ← μ·m + g (m = g at t = 1);  θ ← θ − lr·m
//
// Bindings (sum_squares): 0 p, 1 grad, 2 norms (read_write)
// Bindings (update):      0 p, 1 grad, 2 norms (read), 3 param, 4 m, 5 v
// Grids: sum_squares (1) workgroup 256; update (ceil(len / 256)).

struct OptParams {
    len: u32,
    slot: u32,
    slots: u32,
    kind: u32, // 0 Adam, 1 SGD
    lr: f32,
    beta1: f32, // SGD: momentum
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    max_norm: f32,
    bias1: f32, // 1 − β1^t
    bias2: f32, // 1 − β2^t
    first: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: OptParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_squares(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.len; i += 256u) {
        s = fma(grad[i], grad[i], s);
    }
    partial[li] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (li < k) {
            partial[li] += partial[li + k];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        norms[p.slot] = partial[0];
    }
}

@compute @workgroup_size(256)
fn update(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.len) {
        return;
    }
    var clip = 1.0;
    if (p.max_norm > 0.0) {
        var total = 0.0;
        for (var s = 0u; s < p.slots; s++) {
            total += norms[s];
        }
        clip = min(1.0, p.max_norm / (sqrt(total) + 1e-6));
    }
    let g = clip * grad[i] + p.weight_decay * param[i];
    if (p.kind == 0u) {
        let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= p.lr * (mi / p.bias1) / (sqrt(vi / p.bias2) + p.eps);
    } else {
        var mi = g;
        if (p.first == 0u) {
            mi = p.beta1 * m[i] + g;
        }
        m[i] = mi;
        param[i] -= p.lr * mi;
    }
}

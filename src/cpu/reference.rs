//! The readable statement of the kernels: what `shaders/matmul.wgsl` and
//! `shaders/lstm_step.wgsl` compute, written for clarity, not speed. The forward
//! (`cpu/forward.rs`) runs the same step math through the vectorised `simd` path;
//! tests hold the two to each other and the GPU to both.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::error::{LstmError, Result};
use crate::weights::{LayerWeights, PeepholeWeights};

/// Logistic sigmoid.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Twin of `shaders/matmul.wgsl`: `a·b (+ bias)`. The kernel's transpose flags are
/// views here (`w.t()`); its accumulate flag is `c + matmul(…)`. The forward's input
/// projection is `matmul(X, W_ihᵀ, bias)` for all `T·B` rows at once.
pub fn matmul(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
) -> Result<Array2<f32>> {
    let bias_ok = bias.is_none_or(|v| v.len() == b.ncols());
    if a.ncols() != b.nrows() || !bias_ok {
        return Err(LstmError::shape(
            "matmul operands a [M, K], b [K, N], bias [N]",
            format!("K = {} in a and b, bias of N = {}", a.ncols(), b.ncols()),
            format!(
                "a {:?}, b {:?}, bias {:?}",
                a.shape(),
                b.shape(),
                bias.map(|v| v.len())
            ),
        ));
    }
    let c = match bias {
        Some(bias) => a.dot(&b) + bias,
        None => a.dot(&b),
    };
    // `dot` answers in column-major order when both operands are column-major — as a
    // `[R, 1]` input and a `[1, N]` weight view both are (input size 1, found by the
    // property tests): callers reshape rows, so give them row-major.
    Ok(if c.is_standard_layout() {
        c
    } else {
        c.as_standard_layout().into_owned()
    })
}

/// Twin of `shaders/lstm_step.wgsl`: one time step for a batch.
///
/// `gx` `[B, 4H]` is this step's input projection (bias included); `h`, `c` `[B, H]`
/// are the previous state. Rows with `active[b] == false` keep their state.
/// Returns the new `(h, c)`.
pub fn lstm_step(
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    c: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
) -> Result<(Array2<f32>, Array2<f32>)> {
    let (h, c, _) = lstm_step_with_gates(gx, h, c, w, active)?;
    Ok((h, c))
}

/// Checks the operands of a step against `w`: `gx`/`gates` `[B, 4H]`, every state
/// `[B, H]`, `active` `[B]`, where `w` says H. A mismatch is an error, not a panic.
pub(crate) fn check_step(
    w: &LayerWeights,
    wide: &[(&str, (usize, usize))],
    states: &[(&str, (usize, usize))],
    active: &[bool],
) -> Result<()> {
    let (b, h) = (active.len(), w.w_hh.ncols());
    let peep_ok = match &w.peephole {
        PeepholeWeights::None => true,
        PeepholeWeights::Diagonal(p) => p.len() == 3 * h,
        PeepholeWeights::Full(m) => m.dim() == (4 * h, h),
    };
    if w.w_hh.nrows() != 4 * h || !peep_ok {
        return Err(LstmError::shape(
            "step weights",
            format!("w_hh [4H, H] with H = {h} and matching peepholes"),
            format!("{:?}", w.w_hh.shape()),
        ));
    }
    let all = wide
        .iter()
        .map(|(n, a)| (n, a, 4 * h))
        .chain(states.iter().map(|(n, a)| (n, a, h)));
    for (name, a, cols) in all {
        if *a != (b, cols) {
            return Err(LstmError::shape(
                *name,
                format!("[{b}, {cols}] (B from `active`, H from the weights)"),
                format!("{a:?}"),
            ));
        }
    }
    Ok(())
}

/// [`lstm_step`] that also returns the gate activations `[B, 4H]` (i, f, g, o blocks,
/// zero for inactive rows): what training keeps for backward.
pub fn lstm_step_with_gates(
    gx: ArrayView2<f32>,
    h: ArrayView2<f32>,
    c: ArrayView2<f32>,
    w: &LayerWeights,
    active: &[bool],
) -> Result<(Array2<f32>, Array2<f32>, Array2<f32>)> {
    check_step(
        w,
        &[("gx", gx.dim())],
        &[("h", h.dim()), ("c", c.dim())],
        active,
    )?;
    let hs = h.ncols();
    let mut z = &gx + &h.dot(&w.w_hh.t());
    if let PeepholeWeights::Full(w_ch) = &w.peephole {
        z += &c.dot(&w_ch.t());
    }
    let mut h_new = h.to_owned();
    let mut c_new = c.to_owned();
    let mut gates = Array2::zeros(z.raw_dim());
    for (b, &on) in active.iter().enumerate() {
        if !on {
            continue;
        }
        for j in 0..hs {
            let cp = c[[b, j]];
            let (mut zi, mut zf, zg, mut zo) = (
                z[[b, j]],
                z[[b, hs + j]],
                z[[b, 2 * hs + j]],
                z[[b, 3 * hs + j]],
            );
            let diag = match &w.peephole {
                PeepholeWeights::Diagonal(p) => Some((p[j], p[hs + j], p[2 * hs + j])),
                _ => None,
            };
            if let Some((pi, pf, _)) = diag {
                zi += pi * cp;
                zf += pf * cp;
            }
            let (i, f, g) = (sigmoid(zi), sigmoid(zf), zg.tanh());
            let cn = f * cp + i * g;
            if let Some((_, _, po)) = diag {
                zo += po * cn;
            }
            let o = sigmoid(zo);
            c_new[[b, j]] = cn;
            h_new[[b, j]] = o * cn.tanh();
            for (q, v) in [i, f, g, o].into_iter().enumerate() {
                gates[[b, q * hs + j]] = v;
            }
        }
    }
    Ok((h_new, c_new, gates))
}

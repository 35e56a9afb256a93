//! The ONNX `GRU` operator on this crate's GRU. ONNX orders the gates z, r, h; the
//! crate (PyTorch) r, z, n, so rows are permuted; `linear_before_reset` is the crate's
//! `reset_after`. On a GPU it runs as `GpuGru` (either form), else on the CPU path.

use ndarray::{s, Array3, ArrayD, ArrayView2, Axis, Ix2, Ix3};

use super::node::Node;
use super::rnn::{all_lengths, lengths, reverse_in_time, Device, Direction, RnnAttrs};
use super::value::Value;
use crate::error::{LstmError, Result};
use crate::gpu::GpuGru;
use crate::gru::{GruConfig, GruLayerWeights, GruOptions, GruOutput, GruWeights};
use crate::interop::onnx::{gate_rows, gate_vec};

/// The activations ONNX's GRU defaults to: f (gates), g (candidate).
const DEFAULT_ACTIVATIONS: [&str; 2] = ["Sigmoid", "Tanh"];
/// For each crate gate (r, z, n), the index of the ONNX gate block (z, r, h) it comes from.
pub const GRU_GATE_FROM_ONNX: [usize; 3] = [1, 0, 2];

/// Runs a `GRU` node: its outputs `Y`, `Y_h`.
pub fn gru(n: &Node, device: &Device) -> Result<Vec<Value>> {
    let attrs = RnnAttrs::read(n, &DEFAULT_ACTIVATIONS)?;
    let x = attrs.time_major_x(n.float(0)?)?;
    let reset_after = n.int_attr("linear_before_reset", 0)? != 0;
    let weights = node_weights(n, &attrs, reset_after)?;
    let (t, b, _) = x.dim();
    let (d, h) = (attrs.direction.count(), weights.config.hidden_size);
    let lens = lengths(n.optional_int(4)?, t, b)?;
    let initial = attrs.state(n.optional_float(5)?, "input 5 (initial_h)", [d, b, h])?;
    let opts = GruOptions {
        initial: initial.as_ref(),
        seq_lens: lens.as_deref(),
    };
    let out = if attrs.direction == Direction::Reverse {
        // The weights are a forward layer's; the node reads each sequence back to front.
        let all = all_lengths(&lens, &x);
        let out = forward(&weights, &reverse_in_time(&x, &all), opts, device)?;
        GruOutput {
            y: reverse_in_time(&out.y, &all),
            ..out
        }
    } else {
        forward(&weights, &x, opts, device)?
    };
    Ok(vec![
        Value::Float(attrs.y_output(out.y, d)),
        Value::Float(attrs.state_output(out.h_n)),
    ])
}

/// The node's `W` `[D, 3H, I]`, `R` `[D, 3H, H]` and `B` `[D, 6H]` (`Wb` then `Rb`) in the
/// crate's layout, checked.
fn node_weights(n: &Node, attrs: &RnnAttrs, reset_after: bool) -> Result<GruWeights> {
    let (w, r, bias) = (n.float(1)?, n.float(2)?, n.optional_float(3)?);
    let d = attrs.direction.count();
    let h = attrs.hidden_size.or(r.shape().get(2).copied()).unwrap_or(0);
    let i = w.shape().get(2).copied().unwrap_or(0);
    // Bounds 3H and 6H below; the config's own check (validate) comes after.
    if h > 1 << 24 {
        return Err(LstmError::value("hidden_size", format!("{h} is too large")));
    }
    let want = |a: &ArrayD<f32>, what: &str, shape: &[usize], layout: &str| {
        if a.shape() == shape && h > 0 && i > 0 {
            Ok(())
        } else {
            Err(LstmError::shape(
                what,
                format!("{layout} = {shape:?}"),
                format!("{:?}", a.shape()),
            ))
        }
    };
    want(w, "input 1 (W)", &[d, 3 * h, i], "[D, 3H, I]")?;
    want(r, "input 2 (R)", &[d, 3 * h, h], "[D, 3H, H]")?;
    if let Some(bias) = bias {
        want(bias, "input 3 (B)", &[d, 6 * h], "[D, 6H]")?;
    }
    let (w, r) = (
        w.view().into_dimensionality::<Ix3>().expect("checked"),
        r.view().into_dimensionality::<Ix3>().expect("checked"),
    );
    let bias = bias.map(|b| b.view().into_dimensionality::<Ix2>().expect("checked"));
    let layers = (0..d)
        .map(|dir| GruLayerWeights {
            w_ih: gate_rows(w.index_axis(Axis(0), dir), &GRU_GATE_FROM_ONNX),
            w_hh: gate_rows(r.index_axis(Axis(0), dir), &GRU_GATE_FROM_ONNX),
            b_ih: bias
                .map(|b: ArrayView2<f32>| gate_vec(b.slice(s![dir, ..3 * h]), &GRU_GATE_FROM_ONNX)),
            b_hh: bias
                .map(|b: ArrayView2<f32>| gate_vec(b.slice(s![dir, 3 * h..]), &GRU_GATE_FROM_ONNX)),
        })
        .collect();
    let config = GruConfig::new(i, h)
        .bidirectional(d == 2)
        .bias(bias.is_some())
        .reset_after(reset_after);
    let weights = GruWeights { config, layers };
    weights.validate()?;
    weights.check_finite()?;
    Ok(weights)
}

/// One layer over time-major `x`: `GpuGru` on a GPU, else the CPU path.
fn forward(
    weights: &GruWeights,
    x: &Array3<f32>,
    opts: GruOptions,
    device: &Device,
) -> Result<GruOutput> {
    match device {
        Device::Gpu(ctx) => GpuGru::new(ctx.clone(), weights)?.forward(x.view(), opts),
        _ => crate::cpu::gru_forward(weights, x.view(), opts),
    }
}

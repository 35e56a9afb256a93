//! The ONNX `LSTM` operator on this crate's kernels. One node is one layer, in one or
//! both directions; its weights (gate order i, o, f, c) go through the `W`/`R`/`B`/`P`
//! importer of `interop::onnx`, so a node runs exactly as those tensors would.

use std::collections::HashMap;

use ndarray::{Array3, ArrayD};

use super::node::Node;
use super::rnn::{
    all_lengths, lengths, reverse_in_time, unsupported, zeros_like, Device, Direction, RnnAttrs,
};
use super::value::Value;
use crate::error::{LstmError, Result};
use crate::gpu::GpuLstm;
use crate::interop::onnx::from_tensors;
use crate::interop::tensors::TensorMap;
use crate::sequence::{ForwardOptions, LstmOutput, LstmState};
use crate::weights::LstmWeights;

/// The activations ONNX's LSTM defaults to: f (gates), g (cell input), h (output).
const DEFAULT_ACTIVATIONS: [&str; 3] = ["Sigmoid", "Tanh", "Tanh"];

/// Runs an `LSTM` node: its outputs `Y`, `Y_h`, `Y_c`.
pub fn lstm(n: &Node, device: &Device) -> Result<Vec<Value>> {
    let attrs = RnnAttrs::read(n, &DEFAULT_ACTIVATIONS)?;
    if n.int_attr("input_forget", 0)? != 0 {
        return Err(unsupported(
            "input_forget",
            "coupling the input and forget gates is not supported",
        ));
    }
    let x = attrs.time_major_x(n.float(0)?)?;
    let weights = node_weights(n, &attrs)?;
    let (t, b, _) = x.dim();
    let (d, h) = (attrs.direction.count(), weights.config.hidden_size);
    let lens = lengths(n.optional_int(4)?, t, b)?;
    let initial_h = attrs.state(n.optional_float(5)?, "input 5 (initial_h)", [d, b, h])?;
    let initial_c = attrs.state(n.optional_float(6)?, "input 6 (initial_c)", [d, b, h])?;
    let initial = match (initial_h, initial_c) {
        (None, None) => None,
        (Some(h), None) => Some(LstmState {
            c: zeros_like(&h),
            h,
        }),
        (None, Some(c)) => Some(LstmState {
            h: zeros_like(&c),
            c,
        }),
        (Some(h), Some(c)) => Some(LstmState { h, c }),
    };
    let out = if attrs.direction == Direction::Reverse {
        // The weights are a forward layer's; the node reads each sequence back to front.
        let all = all_lengths(&lens, &x);
        let out = forward(
            &weights,
            &reverse_in_time(&x, &all),
            &lens,
            initial.as_ref(),
            device,
        )?;
        LstmOutput {
            y: reverse_in_time(&out.y, &all),
            ..out
        }
    } else {
        forward(&weights, &x, &lens, initial.as_ref(), device)?
    };
    Ok(vec![
        Value::Float(attrs.y_output(out.y, d)),
        Value::Float(attrs.state_output(out.h_n)),
        Value::Float(attrs.state_output(out.c_n)),
    ])
}

/// The node's `W`, `R`, `B`, `P` as one layer of the crate's weights, checked against
/// its `direction` and `hidden_size`.
fn node_weights(n: &Node, attrs: &RnnAttrs) -> Result<LstmWeights> {
    let mut tensors = HashMap::new();
    for (index, name) in [(1, "W"), (2, "R"), (3, "B"), (7, "P")] {
        let tensor = if index < 3 {
            Some(n.float(index)?)
        } else {
            n.optional_float(index)?
        };
        if let Some(a) = tensor {
            tensors.insert(name.to_string(), a.clone());
        }
    }
    check_weight_dims(&tensors["W"], &tensors["R"], attrs)?;
    from_tensors(
        &TensorMap {
            tensors,
            metadata: HashMap::new(),
        },
        "",
    )
}

/// `W` `[D, 4H, I]` and `R` `[D, 4H, H]` agree with the node's attributes.
fn check_weight_dims(w: &ArrayD<f32>, r: &ArrayD<f32>, attrs: &RnnAttrs) -> Result<()> {
    let d = attrs.direction.count();
    if w.shape().first() != Some(&d) {
        return Err(LstmError::shape(
            "input 1 (W)",
            format!("[D = {d}, 4H, I] for direction {:?}", attrs.direction),
            format!("{:?}", w.shape()),
        ));
    }
    if let (Some(h), Some(&r_h)) = (attrs.hidden_size, r.shape().get(2)) {
        if h != r_h {
            return Err(LstmError::shape(
                "input 2 (R)",
                format!("[D, 4H, H] with H = hidden_size = {h}"),
                format!("{:?}", r.shape()),
            ));
        }
    }
    Ok(())
}

/// One layer over time-major `x` on the chosen device.
fn forward(
    weights: &LstmWeights,
    x: &Array3<f32>,
    lens: &Option<Vec<usize>>,
    initial: Option<&LstmState>,
    device: &Device,
) -> Result<LstmOutput> {
    let opts = ForwardOptions {
        initial,
        seq_lens: lens.as_deref(),
    };
    match device {
        Device::Cpu => crate::cpu::forward(weights, x.view(), opts),
        Device::Gpu(ctx) => GpuLstm::new(ctx.clone(), weights)?.forward(x.view(), opts),
    }
}

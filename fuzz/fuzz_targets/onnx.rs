//! `.onnx` model files: decoding and checking (`OnnxModel::load`), then, for what loads,
//! running the graph on the CPU on small inputs of each graph input's declared type and
//! shape (named or unknown sizes are 2), so the glue ops and RNN nodes see what a
//! corrupt file feeds them.
#![no_main]
include!("scratch.rs");

use std::collections::HashMap;

use lstm_wgpu::interop::onnx_model::{Device, Dim, GraphInput, OnnxModel, Value};
use ndarray::{ArrayD, Dimension, IxDyn};

/// A small input for `input`, or `None` when its declared sizes are not small.
fn input_for(input: &GraphInput) -> Option<Value> {
    let shape: Vec<usize> = match &input.dims {
        None => vec![2, 2, 2],
        Some(dims) => dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Named(_) | Dim::Any => 2,
            })
            .collect(),
    };
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    if count > 4096 {
        return None;
    }
    Some(if input.is_int() {
        Value::Int(ArrayD::from_elem(IxDyn(&shape), 1))
    } else {
        Value::Float(ArrayD::from_shape_fn(IxDyn(&shape), |i| (i.slice().iter().sum::<usize>() as f32 * 0.37).sin()))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch_file(data, "onnx");
    let Ok(model) = OnnxModel::load(&path) else {
        return;
    };
    let inputs: Option<HashMap<String, Value>> = model
        .inputs()
        .iter()
        .map(|i| Some((i.name.clone(), input_for(i)?)))
        .collect();
    if let Some(inputs) = inputs {
        let _ = model.run(&inputs, &Device::Cpu);
    }
});

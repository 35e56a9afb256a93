//! ONNX graph inputs that an initializer also provides (IR ≥ 4 "defaults"; older
//! exporters list every initializer so): they run with the stored value unless bound,
//! and a binding overrides it, as ONNX Runtime does.
#![cfg(feature = "onnx")]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::assert_close;
use lstm_wgpu::interop::npy;
use lstm_wgpu::interop::onnx_model::proto::{
    type_proto, ModelProto, TensorProto, TypeProto, ValueInfoProto,
};
use lstm_wgpu::interop::onnx_model::{Device, OnnxModel, Value};
use ndarray::{ArrayD, IxDyn};
use prost::Message;

const CASE: &str = "torch_lstm_2layer";

fn case_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(CASE)
}

fn decode() -> ModelProto {
    let bytes = std::fs::read(case_dir().join("model.onnx")).unwrap();
    ModelProto::decode(bytes.as_slice()).unwrap()
}

/// A float graph input of undeclared shape named `name`.
fn float_input(name: &str) -> ValueInfoProto {
    let tensor = type_proto::Tensor {
        elem_type: Some(1),
        shape: None,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The first LSTM node's `W` initializer, as an array.
fn lstm_w(m: &ModelProto) -> (String, ArrayD<f32>) {
    let g = m.graph.as_ref().unwrap();
    let node = g.node.iter().find(|n| n.op_type() == "LSTM").unwrap();
    let t: &TensorProto = g
        .initializer
        .iter()
        .find(|t| t.name() == node.input[1])
        .unwrap();
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let raw = t.raw_data.as_ref().expect("PyTorch writes raw_data");
    let v = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (
        t.name().to_string(),
        ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap(),
    )
}

/// The fixture's required inputs.
fn fixture_inputs(model: &OnnxModel) -> HashMap<String, Value> {
    let dir = case_dir().join("inputs");
    let read = |n: &str| npy::read_f32(&dir.join(format!("{n}.npy"))).unwrap();
    model
        .inputs()
        .iter()
        .map(|i| (i.name.clone(), Value::Float(read(&i.name))))
        .collect()
}

fn y_of(model: &OnnxModel, inputs: &HashMap<String, Value>) -> ArrayD<f32> {
    let out = model.run(inputs, &Device::Cpu).unwrap();
    out[0].1.as_float().unwrap().clone()
}

#[test]
fn a_bound_default_overrides_its_initializer() {
    let mut with_default = decode();
    let (w_name, w) = lstm_w(&with_default);
    let graph = with_default.graph.as_mut().unwrap();
    graph.input.push(float_input(&w_name));
    let model = OnnxModel::from_bytes(&with_default.encode_to_vec(), CASE).unwrap();
    assert!(model.defaults().iter().any(|i| i.name == w_name));
    assert!(model.inputs().iter().all(|i| i.name != w_name));

    // Unbound, the stored value runs: ONNX Runtime's outputs.
    let inputs = fixture_inputs(&model);
    let want = npy::read_f32(&case_dir().join("expected/y.npy")).unwrap();
    assert_close("default", &y_of(&model, &inputs), &want, 1e-5, 0.0);

    // Bound, the binding runs: the same as a model whose W is a required input.
    let half = w.mapv(|v| 0.5 * v);
    let mut bound = inputs.clone();
    bound.insert(w_name.clone(), Value::Float(half.clone()));
    let overridden = y_of(&model, &bound);
    let mut required = decode();
    let graph = required.graph.as_mut().unwrap();
    graph.initializer.retain(|t| t.name() != w_name);
    graph.input.push(float_input(&w_name));
    let plain = OnnxModel::from_bytes(&required.encode_to_vec(), CASE).unwrap();
    assert!(plain.inputs().iter().any(|i| i.name == w_name));
    assert_eq!(overridden, y_of(&plain, &bound));
    assert!(
        common::max_diff(&overridden, &want) > 1e-3,
        "the override had no effect"
    );
}

#[test]
fn a_default_bound_with_a_wrong_type_or_an_unknown_name_is_an_error() {
    let mut m = decode();
    let (w_name, _) = lstm_w(&m);
    m.graph.as_mut().unwrap().input.push(float_input(&w_name));
    let model = OnnxModel::from_bytes(&m.encode_to_vec(), CASE).unwrap();
    let mut bound = fixture_inputs(&model);
    bound.insert(w_name.clone(), Value::Int(ArrayD::zeros(IxDyn(&[1]))));
    let msg = model.run(&bound, &Device::Cpu).unwrap_err().to_string();
    assert!(msg.contains(&w_name) && msg.contains("float"), "{msg}");
    let mut bound = fixture_inputs(&model);
    bound.insert("no_such".into(), Value::Float(ArrayD::zeros(IxDyn(&[1]))));
    let msg = model.run(&bound, &Device::Cpu).unwrap_err().to_string();
    assert!(
        msg.contains("no_such") && msg.contains("has a default"),
        "{msg}"
    );
}

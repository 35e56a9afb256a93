//! Whole ONNX model files (tests/fixtures/onnx, made by scripts/make_onnx_fixtures.py)
//! against ONNX Runtime's outputs on the CPU and the GPU, and the errors bad files and
//! bad bindings give.
#![cfg(feature = "onnx")]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{assert_close, shared_context};
use lstm_wgpu::interop::npy;
use lstm_wgpu::interop::onnx_model::proto::{
    attribute_proto::AttributeType, AttributeProto, ModelProto,
};
use lstm_wgpu::interop::onnx_model::{Device, OnnxModel, Value};
use ndarray::{ArrayD, Axis};
use prost::Message;

/// Every fixture: exported by PyTorch, then built with onnx.helper (see the script).
const CASES: [&str; 8] = [
    "torch_lstm_2layer",
    "torch_lstm_bidir_stack",
    "torch_gru_2layer",
    "lstm_reverse_peephole_lens",
    "lstm_layout1_expand_cast",
    "gru_bidir_lbr0_lens",
    // The glue ops alone on their corner cases, opset 17 and the older attribute forms.
    "glue_ops_opset17",
    "glue_ops_opset9",
];
/// CPU vs ONNX Runtime: both f32, different summation order (measured ≤ 1e-7).
const CPU_ATOL: f32 = 1e-5;
/// GPU vs ONNX Runtime: the GPU's exp/tanh and sums differ by a few ULP per step.
const GPU_ATOL: f32 = 1e-4;

fn case_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(case)
}

fn model_bytes(case: &str) -> Vec<u8> {
    std::fs::read(case_dir(case).join("model.onnx")).unwrap()
}

fn load(case: &str) -> OnnxModel {
    OnnxModel::load(&case_dir(case).join("model.onnx")).unwrap()
}

/// The fixture's inputs, each read as its graph input's declared type.
fn inputs(case: &str, model: &OnnxModel) -> HashMap<String, Value> {
    model
        .inputs()
        .iter()
        .map(|i| {
            let path = case_dir(case)
                .join("inputs")
                .join(format!("{}.npy", i.name));
            let v = if i.is_int() {
                Value::Int(npy::read_i64(&path).unwrap())
            } else {
                Value::Float(npy::read_f32(&path).unwrap())
            };
            (i.name.clone(), v)
        })
        .collect()
}

fn expected_path(case: &str, name: &str) -> PathBuf {
    case_dir(case).join("expected").join(format!("{name}.npy"))
}

/// Runs `model` on the case's inputs; the largest error over all outputs, after
/// checking each against `atol`.
fn run_and_compare(case: &str, model: &OnnxModel, device: &Device, atol: f32) -> f32 {
    let got = model.run(&inputs(case, model), device).unwrap();
    assert_eq!(
        got.len(),
        model.output_names().len(),
        "{case}: output count"
    );
    let mut worst = 0.0f32;
    for (name, value) in &got {
        let Value::Float(got) = value else {
            let want = npy::read_i64(&expected_path(case, name)).unwrap();
            assert_eq!(value.as_int(), Some(&want), "{case}/{name}");
            continue;
        };
        let want = npy::read_f32(&expected_path(case, name)).unwrap();
        assert_close(&format!("{case}/{name}"), got, &want, atol, 0.0);
        worst = worst.max(common::max_diff(got, &want));
    }
    worst
}

#[test]
fn every_fixture_matches_onnx_runtime_on_the_cpu() {
    for case in CASES {
        let err = run_and_compare(case, &load(case), &Device::Cpu, CPU_ATOL);
        eprintln!("{case}: CPU max err {err:.2e}");
    }
}

#[test]
fn every_fixture_matches_onnx_runtime_on_the_gpu() {
    let Some(ctx) = shared_context() else { return };
    for case in CASES {
        let err = run_and_compare(case, &load(case), &Device::Gpu(ctx.clone()), GPU_ATOL);
        eprintln!("{case}: GPU max err {err:.2e}");
    }
}

/// The model with the gate blocks `a` and `b` of initializer `name` (`[D, G·H, K]`)
/// swapped: what a wrong gate permutation in the importer would compute.
fn swap_gate_blocks(case: &str, name: &str, gates: usize, (a, b): (usize, usize)) -> OnnxModel {
    let mut m = ModelProto::decode(model_bytes(case).as_slice()).unwrap();
    let graph = m.graph.as_mut().unwrap();
    let t = graph
        .initializer
        .iter_mut()
        .find(|t| t.name() == name)
        .unwrap();
    let raw = t.raw_data.as_mut().expect("PyTorch writes raw_data");
    let (d, rows, cols) = (t.dims[0] as usize, t.dims[1] as usize, t.dims[2] as usize);
    let block = rows / gates * cols * 4;
    for dir in 0..d {
        let base = dir * rows * cols * 4;
        let (x, y) = (base + a * block, base + b * block);
        let tmp = raw[x..x + block].to_vec();
        raw.copy_within(y..y + block, x);
        raw[y..y + block].copy_from_slice(&tmp);
    }
    OnnxModel::from_bytes(&m.encode_to_vec(), case).unwrap()
}

/// The comparison can fail: the same fixtures with two gates' weights swapped (ONNX's
/// o and f for the LSTM, z and r for the GRU) are far outside the tolerance.
#[test]
fn a_wrong_gate_order_fails_the_comparison() {
    for (case, gates, swap) in [
        ("torch_lstm_2layer", 4, (1, 2)),
        ("torch_gru_2layer", 3, (0, 1)),
    ] {
        let w = model_input_of(case, 1);
        let swapped = swap_gate_blocks(case, &w, gates, swap);
        let result =
            std::panic::catch_unwind(|| run_and_compare(case, &swapped, &Device::Cpu, CPU_ATOL));
        assert!(
            result.is_err(),
            "{case}: swapping gates {swap:?} of {w} went unnoticed"
        );
    }
}

/// The name of input `index` of the case's first RNN node (its W is input 1).
fn model_input_of(case: &str, index: usize) -> String {
    let m = ModelProto::decode(model_bytes(case).as_slice()).unwrap();
    let node = m
        .graph
        .unwrap()
        .node
        .into_iter()
        .find(|n| matches!(n.op_type(), "LSTM" | "GRU"))
        .unwrap();
    node.input[index].clone()
}

fn error_of(r: lstm_wgpu::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => lstm_wgpu::error::report(&e),
    }
}

#[test]
fn a_truncated_or_corrupt_file_is_an_error() {
    let bytes = model_bytes("torch_lstm_2layer");
    for len in [
        0,
        1,
        7,
        40,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 200,
        bytes.len() - 1,
    ] {
        let msg = error_of(OnnxModel::from_bytes(&bytes[..len], "cut.onnx"));
        assert!(
            msg.contains("cut.onnx") && msg.contains("ONNX model"),
            "{len} bytes: {msg}"
        );
    }
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
    error_of(OnnxModel::from_bytes(&garbage, "garbage.onnx"));
}

/// The model with `edit` applied to its first node whose operator is `op`.
fn edited(
    case: &str,
    op: &str,
    edit: impl FnOnce(&mut lstm_wgpu::interop::onnx_model::proto::NodeProto),
) -> Vec<u8> {
    let mut m = ModelProto::decode(model_bytes(case).as_slice()).unwrap();
    let node = m
        .graph
        .as_mut()
        .unwrap()
        .node
        .iter_mut()
        .find(|n| n.op_type() == op)
        .unwrap();
    edit(node);
    m.encode_to_vec()
}

#[test]
fn an_unsupported_operator_is_named() {
    let bytes = edited("torch_lstm_2layer", "Squeeze", |n| {
        n.op_type = Some("Softmax".into())
    });
    let msg = error_of(OnnxModel::from_bytes(&bytes, "m.onnx"));
    assert!(msg.contains("Softmax") && msg.contains("/Squeeze"), "{msg}");
    let bytes = edited("torch_lstm_2layer", "Squeeze", |n| {
        n.domain = Some("com.microsoft".into())
    });
    let msg = error_of(OnnxModel::from_bytes(&bytes, "m.onnx"));
    assert!(msg.contains("com.microsoft.Squeeze"), "{msg}");
}

fn attr(name: &str, t: AttributeType, fill: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto {
        name: Some(name.into()),
        r#type: Some(t as i32),
        ..Default::default()
    };
    fill(&mut a);
    a
}

#[test]
fn an_unsupported_rnn_attribute_names_the_node_and_the_attribute() {
    let strings = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect();
    let cases = [
        (
            "LSTM",
            attr("clip", AttributeType::Float, |a| a.f = Some(3.0)),
        ),
        (
            "LSTM",
            attr("input_forget", AttributeType::Int, |a| a.i = Some(1)),
        ),
        (
            "LSTM",
            attr("activations", AttributeType::Strings, |a| {
                a.strings = strings(&["Sigmoid", "Relu", "Tanh"])
            }),
        ),
        (
            "LSTM",
            attr("activation_alpha", AttributeType::Floats, |a| {
                a.floats = vec![0.5]
            }),
        ),
        (
            "LSTM",
            attr("layout", AttributeType::Int, |a| a.i = Some(2)),
        ),
        (
            "GRU",
            attr("activations", AttributeType::Strings, |a| {
                a.strings = strings(&["HardSigmoid", "Tanh"])
            }),
        ),
    ];
    for (op, a) in cases {
        let case = if op == "LSTM" {
            "torch_lstm_2layer"
        } else {
            "torch_gru_2layer"
        };
        let name = a.name().to_string();
        let bytes = edited(case, op, |n| n.attribute.push(a));
        let model = OnnxModel::from_bytes(&bytes, case).unwrap();
        let msg = error_of(model.run(&inputs(case, &model), &Device::Cpu));
        let node = format!("/{op}");
        assert!(
            msg.contains(&node) && msg.contains(&format!("attribute {name}")),
            "{name}: {msg}"
        );
    }
}

#[test]
fn a_wrong_input_shape_is_an_error() {
    let model = load("torch_lstm_2layer");
    let mut bound = inputs("torch_lstm_2layer", &model);
    let x = bound["x"].as_float().unwrap().clone();
    // I = 4 is fixed in the graph; 3 features is a binding error before anything runs.
    bound.insert(
        "x".into(),
        Value::Float(x.slice_axis(Axis(2), (0..3).into()).to_owned()),
    );
    let msg = error_of(model.run(&bound, &Device::Cpu));
    assert!(
        msg.contains("graph input 'x'") && msg.contains("[6, 2, 3]"),
        "{msg}"
    );
    // The wrong element type too.
    bound.insert("x".into(), Value::Int(ArrayD::zeros(vec![6, 2, 4])));
    let msg = error_of(model.run(&bound, &Device::Cpu));
    assert!(
        msg.contains("graph input 'x'") && msg.contains("int64"),
        "{msg}"
    );
}

#[test]
fn a_missing_or_unknown_input_binding_is_an_error() {
    let case = "lstm_reverse_peephole_lens";
    let model = load(case);
    let mut bound = inputs(case, &model);
    bound.remove("seq_lens");
    let msg = error_of(model.run(&bound, &Device::Cpu));
    assert!(
        msg.contains("graph input 'seq_lens'") && msg.contains("not bound"),
        "{msg}"
    );
    let mut bound = inputs(case, &model);
    bound.insert("lengths".into(), Value::Int(ArrayD::zeros(vec![3])));
    let msg = error_of(model.run(&bound, &Device::Cpu));
    assert!(
        msg.contains("'lengths'") && msg.contains("no such input"),
        "{msg}"
    );
}

#[test]
fn bad_values_inside_the_graph_name_the_node() {
    // A sequence length past T reaches the LSTM node, which names itself.
    let case = "lstm_reverse_peephole_lens";
    let model = load(case);
    let mut bound = inputs(case, &model);
    bound.insert(
        "seq_lens".into(),
        Value::Int(ndarray::arr1(&[6, 7, 1]).into_dyn()),
    );
    let msg = error_of(model.run(&bound, &Device::Cpu));
    assert!(
        msg.contains("lstm_reverse") && msg.contains("sequence_lens[1]"),
        "{msg}"
    );
}

#[test]
fn external_data_is_an_error() {
    let mut m = ModelProto::decode(model_bytes("torch_gru_2layer").as_slice()).unwrap();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    t.raw_data = None;
    t.data_location = Some(1);
    let msg = error_of(OnnxModel::from_bytes(&m.encode_to_vec(), "ext.onnx"));
    assert!(msg.contains("external"), "{msg}");
}

/// Found by fuzz/onnx: ndarray::concatenate panicked on an input of a lower rank than the
/// first. Concat's inputs are checked first now.
#[test]
fn concat_of_mismatched_ranks_is_an_error() {
    let case = "glue_ops_opset17";
    let bytes = edited(case, "Concat", |n| {
        n.input = vec!["x".into(), "row0".into()];
        n.attribute[0].i = Some(-1);
    });
    let model = OnnxModel::from_bytes(&bytes, case).unwrap();
    let msg = error_of(model.run(&inputs(case, &model), &Device::Cpu));
    assert!(
        msg.contains("(Concat)") && msg.contains("[3, 4, 5]") && msg.contains("[3, 5]"),
        "{msg}"
    );
}

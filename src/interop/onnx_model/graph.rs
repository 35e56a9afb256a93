//! Runs a graph's nodes in file order (ONNX requires topological order), each on the
//! values computed before it: RNN nodes on the crate's kernels, glue ops on the host.

use super::node::{Node, Values};
use super::proto::{GraphProto, NodeProto};
use super::rnn::Device;
use super::value::Value;
use super::{gru_node, lstm_node, ops, ops_layout};
use crate::error::{LstmError, Result};

/// The operators this runner knows (default ONNX domain).
pub const SUPPORTED_OPS: [&str; 17] = [
    "LSTM",
    "GRU",
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Expand",
    "Reshape",
    "Transpose",
    "Slice",
    "Cast",
    "Identity",
    "Flatten",
    "Dropout",
];

/// Checks, before anything runs, that every node is an operator this runner knows.
pub fn check_ops(graph: &GraphProto) -> Result<()> {
    for node in &graph.node {
        let domain = node.domain();
        let known = matches!(domain, "" | "ai.onnx") && SUPPORTED_OPS.contains(&node.op_type());
        if !known {
            let op = if matches!(domain, "" | "ai.onnx") {
                node.op_type().to_string()
            } else {
                format!("{domain}.{}", node.op_type())
            };
            return Err(LstmError::format(
                format!("ONNX node '{}'", Node::display_name(node)),
                format!(
                    "operator {op} is not supported by lstm-wgpu (supported: {})",
                    SUPPORTED_OPS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Runs every node, adding its outputs to `values`. An error names the node that failed.
pub fn run_nodes(graph: &GraphProto, values: &mut Values, device: &Device) -> Result<()> {
    for proto in &graph.node {
        let node = Node::new(proto, values);
        let outputs = run_node(&node, device).map_err(|source| LstmError::OnnxNode {
            node: node.name(),
            op: proto.op_type().to_string(),
            source: Box::new(source),
        })?;
        store_outputs(proto, outputs, values);
    }
    Ok(())
}

fn run_node(n: &Node, device: &Device) -> Result<Vec<Value>> {
    let one = |v: Result<Value>| v.map(|v| vec![v]);
    match n.proto.op_type() {
        "LSTM" => lstm_node::lstm(n, device),
        "GRU" => gru_node::gru(n, device),
        "Constant" => one(ops::constant(n)),
        "ConstantOfShape" => one(ops::constant_of_shape(n)),
        "Shape" => one(ops::shape(n)),
        "Gather" => one(ops::gather(n)),
        "Unsqueeze" => one(ops::unsqueeze(n)),
        "Squeeze" => one(ops::squeeze(n)),
        "Concat" => one(ops::concat(n)),
        "Cast" => one(ops::cast(n)),
        // Dropout is the identity at inference (its optional mask output is not given).
        "Identity" | "Dropout" => one(n.input(0).cloned()),
        "Flatten" => one(ops_layout::flatten(n)),
        "Expand" => one(ops_layout::expand(n)),
        "Reshape" => one(ops_layout::reshape(n)),
        "Transpose" => one(ops_layout::transpose(n)),
        "Slice" => one(ops_layout::slice(n)),
        other => Err(LstmError::format(
            "operator",
            format!("{other} is not supported"),
        )),
    }
}

/// Names the node's outputs; an output the node leaves unnamed ("") or a value it does
/// not produce (Dropout's mask) is not stored.
fn store_outputs(proto: &NodeProto, outputs: Vec<Value>, values: &mut Values) {
    for (name, value) in proto.output.iter().zip(outputs) {
        if !name.is_empty() {
            values.insert(name.clone(), value);
        }
    }
}

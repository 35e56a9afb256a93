//! Whole `.onnx` model files (feature `onnx`): the graph an exporter wrote around its
//! `LSTM`/`GRU` nodes, run as ONNX Runtime would run it.
//!
//! ```no_run
//! # fn main() -> lstm_wgpu::Result<()> {
//! use std::collections::HashMap;
//! use lstm_wgpu::interop::onnx_model::{Device, OnnxModel, Value};
//!
//! let model = OnnxModel::load("model.onnx".as_ref())?;
//! let x = ndarray::ArrayD::<f32>::zeros(vec![5, 2, 4]);
//! let inputs = HashMap::from([("x".to_string(), Value::Float(x))]);
//! for (name, value) in model.run(&inputs, &Device::Cpu)? {
//!     println!("{name}: {:?}", value.shape());
//! }
//! # Ok(()) }
//! ```
//!
//! The file is decoded with prost types generated from the official `onnx.proto`
//! ([`proto`]). `LSTM` nodes run on [`crate::cpu::forward()`] or [`crate::GpuLstm`];
//! `GRU` nodes (either `linear_before_reset`) on [`crate::cpu::gru_forward`] or
//! [`crate::GpuGru`]; the glue ops exporters
//! write around them (Shape, Gather, Concat, Slice, …: [`SUPPORTED_OPS`]) on
//! host tensors. Anything else, and RNN attributes the kernels cannot honour
//! (activations, clip, input_forget), is an error naming the node.

mod graph;
mod gru_node;
mod inputs;
mod lstm_node;
mod node;
mod ops;
mod ops_layout;
pub mod proto;
mod rnn;
mod value;

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

pub use graph::SUPPORTED_OPS;
pub use inputs::{Dim, GraphInput};
pub use rnn::Device;
pub use value::Value;

use crate::error::{LstmError, Result};
use node::Values;
use proto::{GraphProto, ModelProto};
use value::from_tensor_proto;

/// A decoded and checked ONNX model, ready to run.
pub struct OnnxModel {
    graph: GraphProto,
    /// Initializers, decoded once.
    initializers: Values,
}

impl OnnxModel {
    /// Reads and checks a `.onnx` file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| LstmError::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Decodes and checks a model; `what` names it in errors. A truncated or corrupt
    /// file, a model with no graph or opset, an operator this runner does not know, or
    /// an initializer it cannot read is an error here, before anything runs.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        let model = ModelProto::decode(bytes).map_err(|e| {
            LstmError::format(what, format!("not a valid ONNX model file (protobuf: {e})"))
        })?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| matches!(o.domain(), "" | "ai.onnx"));
        let (Some(graph), Some(_)) = (model.graph, opset) else {
            return Err(LstmError::format(
                what,
                "not a complete ONNX model: no graph or no default-domain opset_import (truncated?)",
            ));
        };
        graph::check_ops(&graph)?;
        let mut initializers = HashMap::new();
        for t in &graph.initializer {
            let value = from_tensor_proto(t, &format!("initializer '{}'", t.name()))?;
            initializers.insert(t.name().to_string(), value);
        }
        Ok(OnnxModel {
            graph,
            initializers,
        })
    }

    /// The inputs a caller binds: the graph's inputs that no initializer provides.
    pub fn inputs(&self) -> Vec<GraphInput> {
        inputs::graph_inputs(&self.graph, &self.initializers)
    }

    /// The graph's inputs that an initializer also provides: a caller may bind them
    /// to override the stored value, as ONNX Runtime allows.
    pub fn defaults(&self) -> Vec<GraphInput> {
        inputs::graph_defaults(&self.graph, &self.initializers)
    }

    /// Whether some node of the graph is an `op` (e.g. "GRU").
    pub fn has_op(&self, op: &str) -> bool {
        self.graph.node.iter().any(|n| n.op_type() == op)
    }

    /// The graph's output names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.graph
            .output
            .iter()
            .map(|o| o.name().to_string())
            .collect()
    }

    /// Whether graph output `name` is declared int32 (held as int64 while running).
    pub fn output_is_int32(&self, name: &str) -> bool {
        inputs::declared_int32(&self.graph, name)
    }

    /// Runs the graph on `inputs` (by graph input name; see [`Self::inputs`]) and returns
    /// every graph output, in the graph's order.
    pub fn run(
        &self,
        inputs: &HashMap<String, Value>,
        device: &Device,
    ) -> Result<Vec<(String, Value)>> {
        let mut values = self.initializers.clone();
        for (name, value) in inputs::bind(&self.inputs(), &self.defaults(), inputs)? {
            values.insert(name, value);
        }
        graph::run_nodes(&self.graph, &mut values, device)?;
        self.output_names()
            .into_iter()
            .map(|name| match values.get(&name).cloned() {
                Some(v) => Ok((name, v)),
                None => Err(LstmError::format(
                    format!("graph output '{name}'"),
                    "no node computes it",
                )),
            })
            .collect()
    }
}

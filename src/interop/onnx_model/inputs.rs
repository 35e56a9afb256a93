//! A graph's inputs: what each one declares (element type, shape with named or fixed
//! sizes) and binding the caller's tensors to them, checked against those declarations.

use std::collections::HashMap;
use std::fmt;

use super::node::Values;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::dimension;
use super::proto::type_proto;
use super::proto::{GraphProto, ValueInfoProto};
use super::value::{data_type_name, Value};
use crate::error::{LstmError, Result};

/// One input a caller must bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphInput {
    pub name: String,
    /// The declared element type (ONNX code; 0 when the file does not say).
    pub elem_type: i32,
    /// Declared sizes: a number, a name (`"T"`, any size), or `None` when the file does
    /// not say. `None` for the whole shape when the rank is not declared.
    pub dims: Option<Vec<Dim>>,
}

/// One declared size of an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    Named(String),
    Any,
}

impl GraphInput {
    /// Whether the input holds integers (it is read as int64 then).
    pub fn is_int(&self) -> bool {
        [DataType::Int64 as i32, DataType::Int32 as i32].contains(&self.elem_type)
    }
}

impl fmt::Display for GraphInput {
    /// `x: float [T, B, 4]`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.name,
            data_type_name(self.elem_type).to_lowercase()
        )?;
        if let Some(dims) = &self.dims {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Named(s) => s.clone(),
                    Dim::Any => "?".into(),
                })
                .collect();
            write!(f, " [{}]", dims.join(", "))?;
        }
        Ok(())
    }
}

/// The graph inputs no initializer provides: what a caller must bind.
pub fn graph_inputs(graph: &GraphProto, initializers: &Values) -> Vec<GraphInput> {
    listed_inputs(graph, initializers, false)
}

/// The graph inputs an initializer also provides: their defaults, which a caller may
/// override by binding them (ONNX IR ≥ 4; older exporters list every initializer so).
pub fn graph_defaults(graph: &GraphProto, initializers: &Values) -> Vec<GraphInput> {
    listed_inputs(graph, initializers, true)
}

fn listed_inputs(graph: &GraphProto, initializers: &Values, with_default: bool) -> Vec<GraphInput> {
    graph
        .input
        .iter()
        .filter(|i| initializers.contains_key(i.name()) == with_default)
        .map(describe)
        .collect()
}

fn tensor_type(info: &ValueInfoProto) -> Option<&type_proto::Tensor> {
    match info.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t),
        _ => None,
    }
}

fn describe(info: &ValueInfoProto) -> GraphInput {
    let t = tensor_type(info);
    let dims = t.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(n)) => {
                    usize::try_from(*n).map_or(Dim::Any, Dim::Fixed)
                }
                Some(dimension::Value::DimParam(p)) => Dim::Named(p.clone()),
                None => Dim::Any,
            })
            .collect()
    });
    GraphInput {
        name: info.name().to_string(),
        elem_type: t.map_or(0, |t| t.elem_type()),
        dims,
    }
}

/// Whether graph output `name` is declared int32.
pub fn declared_int32(graph: &GraphProto, name: &str) -> bool {
    graph
        .output
        .iter()
        .find(|o| o.name() == name)
        .and_then(tensor_type)
        .is_some_and(|t| t.elem_type() == DataType::Int32 as i32)
}

/// Checks `given` against the declared inputs: every required input bound, a default
/// bound only to override it, no unknown name, element types and fixed sizes respected
/// (named sizes take any value, as in ONNX Runtime).
pub fn bind(
    declared: &[GraphInput],
    defaults: &[GraphInput],
    given: &HashMap<String, Value>,
) -> Result<Values> {
    // Older exporters list every weight as an input with a default: name a few only.
    let list = || {
        let shown = defaults
            .iter()
            .take(4)
            .map(|i| format!("{i} (has a default)"));
        let mut items: Vec<String> = declared
            .iter()
            .map(|i| i.to_string())
            .chain(shown)
            .collect();
        if defaults.len() > 4 {
            items.push(format!("and {} more with defaults", defaults.len() - 4));
        }
        items.join("; ")
    };
    let known = |n: &String| declared.iter().chain(defaults).any(|i| &i.name == n);
    if let Some(name) = given.keys().find(|n| !known(n)) {
        return Err(LstmError::format(
            format!("input '{name}'"),
            format!("the model has no such input (its inputs: {})", list()),
        ));
    }
    let mut bound = HashMap::new();
    for input in declared {
        let value = given.get(&input.name).ok_or_else(|| {
            LstmError::format(
                format!("graph input '{}'", input.name),
                format!("not bound (the model's inputs: {})", list()),
            )
        })?;
        check_input(input, value)?;
        bound.insert(input.name.clone(), value.clone());
    }
    for input in defaults {
        if let Some(value) = given.get(&input.name) {
            check_input(input, value)?;
            bound.insert(input.name.clone(), value.clone());
        }
    }
    Ok(bound)
}

fn check_input(input: &GraphInput, value: &Value) -> Result<()> {
    let what = format!("graph input '{}'", input.name);
    let float_declared = input.elem_type == DataType::Float as i32;
    if (float_declared && value.as_float().is_none())
        || (input.is_int() && value.as_int().is_none())
    {
        return Err(LstmError::format(
            what,
            format!("is declared {input}, got {}", value.type_name()),
        ));
    }
    let Some(dims) = &input.dims else {
        return Ok(());
    };
    let shape = value.shape();
    let fits = dims.len() == shape.len()
        && dims.iter().zip(shape).all(|(d, &n)| match d {
            Dim::Fixed(want) => *want == n,
            Dim::Named(_) | Dim::Any => true,
        });
    if !fits {
        return Err(LstmError::shape(
            what,
            input.to_string(),
            format!("{shape:?}"),
        ));
    }
    Ok(())
}

//! One node as an op sees it: its inputs (looked up among the values computed so far)
//! and its attributes, read with the checks every op needs.

use std::collections::HashMap;

use ndarray::ArrayD;

use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, NodeProto};
use super::value::{from_tensor_proto, Value};
use crate::error::{LstmError, Result};

/// The values computed so far (graph inputs, initializers, node outputs), by name.
pub type Values = HashMap<String, Value>;

/// A node and the values its inputs name.
pub struct Node<'a> {
    pub proto: &'a NodeProto,
    values: &'a Values,
}

impl<'a> Node<'a> {
    pub fn new(proto: &'a NodeProto, values: &'a Values) -> Self {
        Node { proto, values }
    }

    /// The node's name, or its first output's when it has none (exporters may omit it).
    pub fn name(&self) -> String {
        Self::display_name(self.proto)
    }

    /// [`Self::name`] of a node not yet bound to values.
    pub fn display_name(proto: &NodeProto) -> String {
        match proto.name() {
            "" => format!("<output {}>", proto.output.first().map_or("", |s| s)),
            name => name.to_string(),
        }
    }

    /// Input `index`, or `None` when the node leaves that optional input out (past the
    /// end of its list, or named "").
    pub fn optional(&self, index: usize) -> Result<Option<&'a Value>> {
        match self.proto.input.get(index).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self.values.get(name).map(Some).ok_or_else(|| {
                LstmError::format(
                    format!("input {index} '{name}'"),
                    "no graph input, initializer or earlier node gives this value \
                     (the nodes must be in topological order)",
                )
            }),
        }
    }

    /// Input `index`, which the op requires.
    pub fn input(&self, index: usize) -> Result<&'a Value> {
        self.optional(index)?
            .ok_or_else(|| LstmError::format(format!("input {index}"), "is required but not given"))
    }

    /// Input `index` as a float tensor.
    pub fn float(&self, index: usize) -> Result<&'a ArrayD<f32>> {
        let v = self.input(index)?;
        v.as_float()
            .ok_or_else(|| self.wrong_type(index, v, "float"))
    }

    /// Optional input `index` as a float tensor.
    pub fn optional_float(&self, index: usize) -> Result<Option<&'a ArrayD<f32>>> {
        match self.optional(index)? {
            None => Ok(None),
            Some(Value::Float(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong_type(index, v, "float")),
        }
    }

    /// Optional input `index` as an integer tensor.
    pub fn optional_int(&self, index: usize) -> Result<Option<&'a ArrayD<i64>>> {
        match self.optional(index)? {
            None => Ok(None),
            Some(Value::Int(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong_type(index, v, "an integer type")),
        }
    }

    /// Optional input `index` as a list of integers (axes, shapes, starts: rank ≤ 1).
    pub fn optional_ints(&self, index: usize) -> Result<Option<Vec<i64>>> {
        let Some(a) = self.optional_int(index)? else {
            return Ok(None);
        };
        if a.ndim() > 1 {
            return Err(LstmError::shape(
                format!("input {index}"),
                "a scalar or a 1-D list",
                format!("{:?}", a.shape()),
            ));
        }
        Ok(Some(a.iter().copied().collect()))
    }

    fn wrong_type(&self, index: usize, v: &Value, want: &str) -> LstmError {
        let name = self.proto.input.get(index).map_or("", |s| s);
        LstmError::format(
            format!("input {index} '{name}'"),
            format!("is {}, this op needs {want} here", v.type_name()),
        )
    }

    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name() == name)
    }

    /// An integer attribute, or `default` when absent.
    pub fn int_attr(&self, name: &str, default: i64) -> Result<i64> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) => {
                expect_type(a, AttributeType::Int)?;
                Ok(a.i())
            }
        }
    }

    /// An integer-list attribute, or `None` when absent.
    pub fn ints_attr(&self, name: &str) -> Result<Option<Vec<i64>>> {
        self.attr(name)
            .map(|a| expect_type(a, AttributeType::Ints).map(|()| a.ints.clone()))
            .transpose()
    }

    /// A string attribute (UTF-8), or `None` when absent.
    pub fn string_attr(&self, name: &str) -> Result<Option<String>> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        expect_type(a, AttributeType::String)?;
        String::from_utf8(a.s().to_vec())
            .map(Some)
            .map_err(|_| LstmError::format(format!("attribute {name}"), "is not UTF-8"))
    }

    /// A tensor attribute converted to a value, or `None` when absent.
    pub fn tensor_attr(&self, name: &str) -> Result<Option<Value>> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        expect_type(a, AttributeType::Tensor)?;
        let t =
            a.t.as_ref()
                .ok_or_else(|| LstmError::format(format!("attribute {name}"), "holds no tensor"))?;
        from_tensor_proto(t, &format!("attribute {name}")).map(Some)
    }
}

/// Checks an attribute's declared type (files from old exporters may leave it unset).
fn expect_type(a: &AttributeProto, want: AttributeType) -> Result<()> {
    match a.r#type {
        None | Some(0) => Ok(()),
        Some(t) if t == want as i32 => Ok(()),
        Some(t) => Err(LstmError::format(
            format!("attribute {}", a.name()),
            format!(
                "has type {}, expected {}",
                AttributeType::try_from(t)
                    .map_or_else(|_| t.to_string(), |t| t.as_str_name().into()),
                want.as_str_name()
            ),
        )),
    }
}

/// An axis in `-rank..rank` as an index in `0..rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(LstmError::value(
            "axis",
            format!("{axis} is outside {}..{r} (rank {rank})", -r),
        ))
    }
}

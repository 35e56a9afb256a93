//! The values that flow along a graph's edges: float tensors (what the RNN nodes take
//! and give) and integer tensors (shapes, indices, axes, lengths), and how an ONNX
//! `TensorProto` (an initializer or a `Constant`) becomes one.

use ndarray::{ArrayD, IxDyn};

use super::proto::tensor_proto::{DataLocation, DataType};
use super::proto::TensorProto;
use crate::error::{LstmError, Result};

/// A tensor on a graph edge. Every integer type is held as i64 (ONNX's shape and index
/// type); a graph output declared int32 is written back as int32.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(ArrayD<f32>),
    Int(ArrayD<i64>),
}

impl From<ArrayD<f32>> for Value {
    fn from(a: ArrayD<f32>) -> Self {
        Value::Float(a)
    }
}

impl From<ArrayD<i64>> for Value {
    fn from(a: ArrayD<i64>) -> Self {
        Value::Int(a)
    }
}

impl Value {
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Float(a) => a.shape(),
            Value::Int(a) => a.shape(),
        }
    }

    /// "float" or "int64", as error messages name the element type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Float(_) => "float",
            Value::Int(_) => "int64",
        }
    }

    /// The float tensor, or `None` for an integer one.
    pub fn as_float(&self) -> Option<&ArrayD<f32>> {
        match self {
            Value::Float(a) => Some(a),
            Value::Int(_) => None,
        }
    }

    /// The integer tensor, or `None` for a float one.
    pub fn as_int(&self) -> Option<&ArrayD<i64>> {
        match self {
            Value::Int(a) => Some(a),
            Value::Float(_) => None,
        }
    }
}

/// The name ONNX gives an element type code, for messages ("FLOAT16", "code 99").
pub fn data_type_name(code: i32) -> String {
    DataType::try_from(code).map_or_else(|_| format!("code {code}"), |t| t.as_str_name().into())
}

/// Converts a tensor read from the file. Data may sit in `raw_data` (little-endian
/// bytes, what exporters write) or in the typed repeated fields; both are read. Only
/// float, int64 and int32 (the types of an RNN graph) are supported.
pub fn from_tensor_proto(t: &TensorProto, what: &str) -> Result<Value> {
    if t.data_location() == DataLocation::External || !t.external_data.is_empty() {
        return Err(LstmError::format(
            what,
            "its data is stored in an external file, which is not supported: save the model \
             with its data inside (onnx.save_model(..., save_as_external_data=False))",
        ));
    }
    let shape = dims(t, what)?;
    let count = element_count(&shape, what)?;
    let raw = t.raw_data.as_deref();
    let value = match DataType::try_from(t.data_type.unwrap_or(0)) {
        Ok(DataType::Float) => Value::Float(array(
            &shape,
            match raw {
                Some(bytes) => from_le::<4, f32>(bytes, count, what, f32::from_le_bytes)?,
                None => t.float_data.clone(),
            },
            what,
        )?),
        Ok(DataType::Int64) => Value::Int(array(
            &shape,
            match raw {
                Some(bytes) => from_le::<8, i64>(bytes, count, what, i64::from_le_bytes)?,
                None => t.int64_data.clone(),
            },
            what,
        )?),
        Ok(DataType::Int32) => Value::Int(array(
            &shape,
            match raw {
                Some(bytes) => {
                    from_le::<4, i64>(bytes, count, what, |b| i64::from(i32::from_le_bytes(b)))?
                }
                None => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
            },
            what,
        )?),
        _ => {
            return Err(LstmError::format(
                what,
                format!(
                    "element type {} is not supported (float, int64 and int32 are)",
                    data_type_name(t.data_type.unwrap_or(0))
                ),
            ))
        }
    };
    Ok(value)
}

/// The tensor's dimensions, each a non-negative size.
fn dims(t: &TensorProto, what: &str) -> Result<Vec<usize>> {
    t.dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                LstmError::format(what, format!("dimension {d} in {:?} is negative", t.dims))
            })
        })
        .collect()
}

/// The product of the dimensions, checked for overflow (a corrupt file may claim anything).
pub fn element_count(shape: &[usize], what: &str) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| LstmError::format(what, format!("shape {shape:?} has too many elements")))
}

/// `count` little-endian `N`-byte values from `bytes`, which must hold exactly that many.
fn from_le<const N: usize, T>(
    bytes: &[u8],
    count: usize,
    what: &str,
    decode: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    if Some(bytes.len()) != count.checked_mul(N) {
        return Err(LstmError::format(
            what,
            format!(
                "raw_data holds {} bytes, its shape needs {count} values of {N} bytes",
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|c| decode(c.try_into().expect("chunks_exact gives N bytes")))
        .collect())
}

/// `data` as an array of `shape`, or an error naming the tensor when the counts differ.
fn array<T>(shape: &[usize], data: Vec<T>, what: &str) -> Result<ArrayD<T>> {
    let len = data.len();
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| {
        LstmError::format(
            what,
            format!("holds {len} values, its shape {shape:?} needs a different count"),
        )
    })
}

/// Applies a layout operation (one written generically over the element type) to a
/// value of either type, keeping the type: `for_each_type!(value, a => op(a)?)`.
macro_rules! for_each_type {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            Value::Float($a) => Value::Float($body),
            Value::Int($a) => Value::Int($body),
        }
    };
}
pub(crate) use for_each_type;

/// The most elements a glue op may create from a shape it reads (ConstantOfShape,
/// Expand, Concat, Gather). They make shapes, indices and state-sized tensors; a corrupt
/// or hostile file could otherwise ask for terabytes with a few bytes of shape
/// (2^26 floats are 256 MiB).
pub const MAX_GLUE_ELEMENTS: usize = 1 << 26;

/// Errors when a glue op's output of `shape` would pass [`MAX_GLUE_ELEMENTS`].
pub fn check_glue_size(shape: &[usize], what: &str) -> Result<usize> {
    let count = element_count(shape, what)?;
    if count > MAX_GLUE_ELEMENTS {
        return Err(LstmError::format(
            what,
            format!("shape {shape:?} has {count} elements, more than the {MAX_GLUE_ELEMENTS} a glue op may make"),
        ));
    }
    Ok(count)
}

/// An array of `shape` filled with `fill`, within [`MAX_GLUE_ELEMENTS`].
pub fn filled<T: Clone>(shape: &[usize], fill: T, what: &str) -> Result<ArrayD<T>> {
    let count = check_glue_size(shape, what)?;
    let mut data = Vec::new();
    data.try_reserve_exact(count).map_err(|_| {
        LstmError::format(
            what,
            format!("shape {shape:?} is too large to hold in memory"),
        )
    })?;
    data.resize(count, fill);
    array(shape, data, what)
}

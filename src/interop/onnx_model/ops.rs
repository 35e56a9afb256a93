//! The glue ops exporters write around RNN nodes, on host tensors: the ones that make
//! or pick values (Constant, ConstantOfShape, Shape, Gather, Cast, Identity) and the
//! ones that add, drop or join axes (Unsqueeze, Squeeze, Concat). Each follows the
//! ONNX operator spec (opset 13+, where axes are inputs, and the older attribute forms).

use ndarray::{ArrayD, Axis, IxDyn};

use super::node::{normalize_axis, Node};
use super::proto::tensor_proto::DataType;
use super::value::{check_glue_size, data_type_name, filled, for_each_type, Value};
use crate::error::{LstmError, Result};

/// `Constant`: the value in its `value` (tensor), `value_float(s)` or `value_int(s)` attribute.
pub fn constant(n: &Node) -> Result<Value> {
    if let Some(v) = n.tensor_attr("value")? {
        return Ok(v);
    }
    let scalar = IxDyn(&[]);
    if let Some(a) = n.attr("value_float") {
        return Ok(Value::Float(ArrayD::from_elem(scalar, a.f())));
    }
    if let Some(a) = n.attr("value_int") {
        return Ok(Value::Int(ArrayD::from_elem(scalar, a.i())));
    }
    if let Some(a) = n.attr("value_floats") {
        return Ok(Value::Float(
            ArrayD::from_shape_vec(IxDyn(&[a.floats.len()]), a.floats.clone()).expect("1-D"),
        ));
    }
    if let Some(a) = n.attr("value_ints") {
        return Ok(Value::Int(
            ArrayD::from_shape_vec(IxDyn(&[a.ints.len()]), a.ints.clone()).expect("1-D"),
        ));
    }
    Err(LstmError::format(
        "attributes",
        "none of value, value_float(s), value_int(s) is set (sparse and string constants are not supported)",
    ))
}

/// `ConstantOfShape`: a tensor of the shape in input 0, filled with the one element of
/// the `value` attribute (float 0 by default).
pub fn constant_of_shape(n: &Node) -> Result<Value> {
    let shape = sizes(&n.optional_ints(0)?.unwrap_or_default(), "input 0 (shape)")?;
    let fill = n
        .tensor_attr("value")?
        .unwrap_or(Value::Float(ArrayD::zeros(IxDyn(&[1]))));
    if fill.shape().iter().product::<usize>() != 1 {
        return Err(LstmError::shape(
            "attribute value",
            "one element",
            format!("{:?}", fill.shape()),
        ));
    }
    Ok(match fill {
        Value::Float(f) => Value::Float(filled(
            &shape,
            f.iter().copied().next().unwrap_or(0.0),
            "output",
        )?),
        Value::Int(f) => Value::Int(filled(
            &shape,
            f.iter().copied().next().unwrap_or(0),
            "output",
        )?),
    })
}

/// `Shape`: the input's dimensions as int64, optionally only `start..end` (opset 15).
pub fn shape(n: &Node) -> Result<Value> {
    let dims = n.input(0)?.shape();
    let rank = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clamp(n.int_attr("start", 0)?);
    let end = clamp(n.int_attr("end", rank)?).max(start);
    let out: Vec<i64> = dims[start..end].iter().map(|&d| d as i64).collect();
    Ok(Value::Int(
        ArrayD::from_shape_vec(IxDyn(&[out.len()]), out).expect("1-D"),
    ))
}

/// `Gather`: entries of input 0 along `axis` at the (possibly negative) indices in input 1.
pub fn gather(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let indices = n
        .optional_int(1)?
        .ok_or_else(|| LstmError::format("input 1 (indices)", "is required"))?;
    let axis = normalize_axis(n.int_attr("axis", 0)?, data.shape().len())?;
    let dim = data.shape()[axis];
    let picked = indices
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim as i64 } else { i };
            usize::try_from(j).ok().filter(|&j| j < dim).ok_or_else(|| {
                LstmError::value(
                    "input 1 (indices)",
                    format!("{i} is outside -{dim}..{dim} (axis {axis})"),
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let mut out_shape = data.shape()[..axis].to_vec();
    out_shape.extend_from_slice(indices.shape());
    out_shape.extend_from_slice(&data.shape()[axis + 1..]);
    check_glue_size(&out_shape, "output")?;
    Ok(for_each_type!(data, a => reshape_to(&a.select(Axis(axis), &picked), &out_shape)))
}

/// `Unsqueeze`: size-1 axes inserted at `axes` (input 1, or the attribute before opset 13),
/// counted in the output's rank.
pub fn unsqueeze(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let axes = axes_of(n)?.ok_or_else(|| LstmError::format("axes", "are required"))?;
    let rank = data.shape().len() + axes.len();
    let mut axes = axes
        .iter()
        .map(|&a| normalize_axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(LstmError::value(
            "axes",
            format!("{axes:?} repeats an axis"),
        ));
    }
    let mut shape = data.shape().to_vec();
    for &a in &axes {
        shape.insert(a, 1);
    }
    Ok(for_each_type!(data, a => reshape_to(a, &shape)))
}

/// `Squeeze`: the size-1 axes at `axes` removed (every size-1 axis when none are given).
pub fn squeeze(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let dims = data.shape();
    let drop: Vec<usize> = match axes_of(n)? {
        None => (0..dims.len()).filter(|&a| dims[a] == 1).collect(),
        Some(axes) => axes
            .iter()
            .map(|&a| normalize_axis(a, dims.len()))
            .collect::<Result<_>>()?,
    };
    if let Some(&a) = drop.iter().find(|&&a| dims[a] != 1) {
        return Err(LstmError::shape(
            "input 0",
            format!("size 1 on axis {a}"),
            format!("{dims:?}"),
        ));
    }
    let shape: Vec<usize> = (0..dims.len())
        .filter(|a| !drop.contains(a))
        .map(|a| dims[a])
        .collect();
    Ok(for_each_type!(data, a => reshape_to(a, &shape)))
}

/// The axes of Squeeze/Unsqueeze: input 1 (opset 13+) or the `axes` attribute (older).
fn axes_of(n: &Node) -> Result<Option<Vec<i64>>> {
    match n.optional_ints(1)? {
        Some(axes) => Ok(Some(axes)),
        None => n.ints_attr("axes"),
    }
}

/// `Concat`: the inputs joined along `axis`; all must have one element type.
pub fn concat(n: &Node) -> Result<Value> {
    let inputs = (0..n.proto.input.len())
        .filter_map(|i| n.optional(i).transpose())
        .collect::<Result<Vec<&Value>>>()?;
    let first = inputs
        .first()
        .ok_or_else(|| LstmError::format("inputs", "none given"))?;
    let axis = normalize_axis(n.int_attr("axis", i64::MAX)?, first.shape().len())?;
    let mismatch = || {
        let shapes: Vec<String> = inputs
            .iter()
            .map(|v| format!("{} {:?}", v.type_name(), v.shape()))
            .collect();
        LstmError::shape(
            format!("inputs joined on axis {axis}"),
            "one element type and equal sizes off the axis",
            shapes.join(", "),
        )
    };
    // Checked here, not left to ndarray::concatenate, which indexes an input of a lower
    // rank out of bounds (a panic) before it compares shapes (found by fuzz/onnx).
    let off_axis = |s: &[usize]| {
        (
            s.len(),
            [&s[..axis.min(s.len())], &s[(axis + 1).min(s.len())..]].concat(),
        )
    };
    if inputs
        .iter()
        .any(|v| off_axis(v.shape()) != off_axis(first.shape()))
    {
        return Err(mismatch());
    }
    let mut joined = first.shape().to_vec();
    joined[axis] = inputs
        .iter()
        .map(|v| v.shape()[axis])
        .fold(0, usize::saturating_add);
    check_glue_size(&joined, "output")?;
    Ok(match first {
        Value::Float(_) => {
            let views: Option<Vec<_>> = inputs
                .iter()
                .map(|v| v.as_float().map(|a| a.view()))
                .collect();
            Value::Float(
                ndarray::concatenate(Axis(axis), &views.ok_or_else(mismatch)?)
                    .map_err(|_| mismatch())?,
            )
        }
        Value::Int(_) => {
            let views: Option<Vec<_>> = inputs
                .iter()
                .map(|v| v.as_int().map(|a| a.view()))
                .collect();
            Value::Int(
                ndarray::concatenate(Axis(axis), &views.ok_or_else(mismatch)?)
                    .map_err(|_| mismatch())?,
            )
        }
    })
}

/// `Cast` to float, int64 or int32 (held as int64 with int32's wrap-around).
pub fn cast(n: &Node) -> Result<Value> {
    let input = n.input(0)?;
    let to = n.int_attr("to", 0)?;
    let to = i32::try_from(to).unwrap_or(0);
    Ok(match (DataType::try_from(to), input) {
        (Ok(DataType::Float), Value::Float(a)) => Value::Float(a.clone()),
        (Ok(DataType::Float), Value::Int(a)) => Value::Float(a.mapv(|v| v as f32)),
        (Ok(DataType::Int64), Value::Int(a)) => Value::Int(a.clone()),
        (Ok(DataType::Int64), Value::Float(a)) => Value::Int(a.mapv(|v| v as i64)),
        (Ok(DataType::Int32), Value::Int(a)) => Value::Int(a.mapv(|v| i64::from(v as i32))),
        (Ok(DataType::Int32), Value::Float(a)) => Value::Int(a.mapv(|v| i64::from(v as i32))),
        _ => {
            return Err(LstmError::format(
                "attribute to",
                format!(
                    "casting to {} is not supported (FLOAT, INT64 and INT32 are)",
                    data_type_name(to)
                ),
            ))
        }
    })
}

/// Non-negative sizes from an int list (a shape input).
pub fn sizes(list: &[i64], what: &str) -> Result<Vec<usize>> {
    list.iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| LstmError::value(what, format!("size {d} in {list:?} is negative")))
        })
        .collect()
}

/// `a` (any layout) with its elements in row-major order laid out as `shape`, whose
/// element count the callers have made equal.
pub fn reshape_to<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    let data: Vec<T> = a.iter().cloned().collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("callers keep the element count")
}

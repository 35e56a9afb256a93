//! Glue ops that rearrange a tensor's elements: Reshape, Transpose, Expand, Slice
//! (ONNX operator spec; Slice's inputs form from opset 10, its attribute form before).

use ndarray::{ArrayD, Axis, IxDyn};

use super::node::{normalize_axis, Node};
use super::ops::{reshape_to, sizes};
use super::value::{element_count, filled, for_each_type, Value};
use crate::error::{LstmError, Result};

/// `Reshape` to the shape in input 1: 0 copies the input's size there (unless
/// `allowzero = 1`), one -1 takes what is left.
pub fn reshape(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let spec = n
        .optional_ints(1)?
        .ok_or_else(|| LstmError::format("input 1 (shape)", "is required"))?;
    let allow_zero = n.int_attr("allowzero", 0)? == 1;
    let total = data.shape().iter().product::<usize>();
    let mut shape = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        shape.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allow_zero => *data.shape().get(i).ok_or_else(|| bad_shape(&spec, data))?,
            d => usize::try_from(d).map_err(|_| bad_shape(&spec, data))?,
        });
    }
    let known = element_count(&shape, "input 1 (shape)")?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(bad_shape(&spec, data));
        }
        shape[i] = total / known;
    } else if known != total {
        return Err(bad_shape(&spec, data));
    }
    Ok(for_each_type!(data, a => reshape_to(a, &shape)))
}

fn bad_shape(spec: &[i64], data: &Value) -> LstmError {
    LstmError::shape(
        "input 1 (shape)",
        format!(
            "a shape with the {} elements of input 0 {:?}",
            data.shape().iter().product::<usize>(),
            data.shape()
        ),
        format!("{spec:?}"),
    )
}

/// `Flatten`: a 2-D tensor, the axes before `axis` (default 1) joined into rows and the
/// rest into columns.
pub fn flatten(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let dims = data.shape();
    let rank = dims.len() as i64;
    let axis = n.int_attr("axis", 1)?;
    // Unlike other ops' axes, rank itself is allowed here (every axis in the rows).
    let axis = match if axis < 0 { axis + rank } else { axis } {
        a if (0..=rank).contains(&a) => a as usize,
        _ => {
            return Err(LstmError::value(
                "attribute axis",
                format!("{axis} is outside -{rank}..={rank}"),
            ))
        }
    };
    let shape = [dims[..axis].iter().product(), dims[axis..].iter().product()];
    Ok(for_each_type!(data, a => reshape_to(a, &shape)))
}

/// `Transpose` by `perm` (reversed axes by default).
pub fn transpose(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let rank = data.shape().len();
    let perm = match n.ints_attr("perm")? {
        Some(p) => p,
        None => (0..rank as i64).rev().collect(),
    };
    let mut seen = vec![false; rank];
    let perm: Vec<usize> = perm
        .iter()
        .map(|&p| {
            usize::try_from(p)
                .ok()
                .filter(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
        })
        .collect::<Option<_>>()
        .filter(|p: &Vec<usize>| p.len() == rank)
        .ok_or_else(|| {
            LstmError::value(
                "attribute perm",
                format!("{perm:?} is not a permutation of 0..{rank}"),
            )
        })?;
    Ok(
        for_each_type!(data, a => a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned()),
    )
}

/// `Expand`: input 0 broadcast (NumPy rules, both ways) with the shape in input 1.
pub fn expand(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let spec = n
        .optional_ints(1)?
        .ok_or_else(|| LstmError::format("input 1 (shape)", "is required"))?;
    let spec = sizes(&spec, "input 1 (shape)")?;
    let (a, b) = (data.shape(), spec.as_slice());
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    let shape = (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(LstmError::shape(
                "input 1 (shape)",
                format!("a shape that input 0 {a:?} broadcasts to"),
                format!("{b:?}"),
            )),
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(for_each_type!(data, x => broadcast(x, &shape)?))
}

fn broadcast<T: Clone + Default>(a: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>> {
    let mut out = filled(shape, T::default(), "output")?;
    let view = a
        .broadcast(IxDyn(shape))
        .expect("shape is a broadcast of the input's");
    out.assign(&view);
    Ok(out)
}

/// `Slice`: per listed axis, the elements from `starts` towards `ends` by `steps`
/// (inputs 1-4 from opset 10; attributes `starts`, `ends`, `axes` before), with ONNX's
/// clamping of out-of-range bounds.
pub fn slice(n: &Node) -> Result<Value> {
    let data = n.input(0)?;
    let rank = data.shape().len();
    let list = |index: usize, attr: &str| -> Result<Option<Vec<i64>>> {
        match n.optional_ints(index)? {
            Some(v) => Ok(Some(v)),
            None => n.ints_attr(attr),
        }
    };
    let starts = list(1, "starts")?.ok_or_else(|| LstmError::format("starts", "are required"))?;
    let ends = list(2, "ends")?.ok_or_else(|| LstmError::format("ends", "are required"))?;
    let axes = list(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = n.optional_ints(4)?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(LstmError::shape(
            "starts, ends, axes, steps",
            "lists of one length",
            format!("{starts:?}, {ends:?}, {axes:?}, {steps:?}"),
        ));
    }
    let mut picks: Vec<Option<Vec<usize>>> = vec![None; rank];
    for i in 0..starts.len() {
        let axis = normalize_axis(axes[i], rank)?;
        if picks[axis].is_some() {
            return Err(LstmError::value(
                "axes",
                format!("{axes:?} repeats axis {axis}"),
            ));
        }
        picks[axis] = Some(slice_indices(
            starts[i],
            ends[i],
            steps[i],
            data.shape()[axis],
        )?);
    }
    Ok(for_each_type!(data, a => pick(a, &picks)))
}

/// The indices one axis of size `dim` keeps, following the spec's clamping.
fn slice_indices(start: i64, end: i64, step: i64, dim: usize) -> Result<Vec<usize>> {
    if step == 0 {
        return Err(LstmError::value("steps", "a step is 0"));
    }
    if dim == 0 {
        return Ok(Vec::new());
    }
    let d = dim as i64;
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (start, end) = (wrap(start), wrap(end));
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, end) = (start.clamp(0, d), end.clamp(0, d));
        while i < end {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    } else {
        let (mut i, end) = (start.clamp(0, d - 1), end.clamp(-1, d - 1));
        while i > end {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    Ok(out)
}

/// `a` with, on each axis that has a list, only the listed indices.
fn pick<T: Clone>(a: &ArrayD<T>, picks: &[Option<Vec<usize>>]) -> ArrayD<T> {
    let mut out = a.clone();
    for (axis, list) in picks.iter().enumerate() {
        if let Some(list) = list {
            out = out.select(Axis(axis), list);
        }
    }
    out
}

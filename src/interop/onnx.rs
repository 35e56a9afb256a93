//! Tensors of the ONNX `LSTM` operator: `W` `[D, 4H, I]`, `R` `[D, 4H, H]`, optional
//! `B` `[D, 8H]` (`Wb` then `Rb`) and optional `P` `[D, 3H]` (peepholes), with D = 1
//! (forward) or 2 (bidirectional), as `.npy` files or safetensors tensors, optionally
//! under a prefix. One operator is one layer.
//!
//! ONNX orders the gates i, o, f, c and the peepholes i, o, f; the crate uses i, f, g, o
//! and (i, f, o), so rows are permuted on import. ONNX's peepholes act exactly like
//! [`Peephole::Diagonal`] (`p_i`, `p_f` on `c_{t-1}`, `p_o` on `c_t`). Only tensors are
//! read, so the operator's attributes are taken to be the defaults: activations
//! sigmoid/tanh/tanh, no `clip`, `input_forget = 0`.

use std::path::Path;

use ndarray::{concatenate, s, Array1, Array2, ArrayD, ArrayView1, ArrayView2, Axis, Ix2, Ix3};

use super::tensors::{read_tensors, TensorMap};
use crate::config::{LstmConfig, Peephole};
use crate::error::{LstmError, Result};
use crate::weights::{LayerWeights, LstmWeights, PeepholeWeights};

/// For each crate gate (i, f, g, o), the index of the ONNX gate block (i, o, f, c) it comes from.
const GATE_FROM_ONNX: [usize; 4] = [0, 2, 3, 1];
/// For each crate peephole (i, f, o), the index of the ONNX peephole block (i, o, f).
const PEEPHOLE_FROM_ONNX: [usize; 3] = [0, 2, 1];

/// Reads ONNX LSTM tensors from a safetensors file or a directory of `.npy` files.
pub fn load(path: &Path, prefix: &str) -> Result<LstmWeights> {
    from_tensors(&read_tensors(path)?, prefix)
}

/// Builds weights from `{prefix}W`, `{prefix}R`, `{prefix}B`, `{prefix}P`; the config
/// (directions, sizes, bias, peepholes) is inferred from them.
pub fn from_tensors(map: &TensorMap, prefix: &str) -> Result<LstmWeights> {
    let name = |n: &str| format!("{prefix}{n}");
    let r = map
        .shape(&name("R"))
        .ok_or_else(|| LstmError::shape(format!("tensor {}", name("R")), "[D, 4H, H]", "missing"))?
        .to_vec();
    // 4·H checked: a zero-length tensor may claim any H, which is a shape error, not an overflow.
    if r.len() != 3 || !(1..=2).contains(&r[0]) || r[2] == 0 || r[2].checked_mul(4) != Some(r[1]) {
        return Err(LstmError::shape(
            format!("tensor {}", name("R")),
            "[D, 4H, H] with D = 1 or 2",
            format!("{r:?}"),
        ));
    }
    let (d, h) = (r[0], r[2]);
    let input_size = match map.shape(&name("W")) {
        Some(&[wd, g, i]) if wd == d && g == 4 * h && i > 0 => i,
        found => {
            return Err(LstmError::shape(
                format!("tensor {}", name("W")),
                format!("[{d}, {}, I]", 4 * h),
                found.map_or("missing".into(), |s| format!("{s:?}")),
            ))
        }
    };
    let w = map.get(&name("W"), &[d, 4 * h, input_size])?;
    let rr = map.get(&name("R"), &[d, 4 * h, h])?;
    let b = opt(map, &name("B"), &[d, 8 * h])?;
    let p = opt(map, &name("P"), &[d, 3 * h])?;
    let config = LstmConfig::new(input_size, h)
        .bidirectional(d == 2)
        .bias(b.is_some())
        .peephole(if p.is_some() {
            Peephole::Diagonal
        } else {
            Peephole::None
        });
    config.validate()?;

    let (w, rr) = (
        w.into_dimensionality::<Ix3>().expect("checked shape"),
        rr.into_dimensionality::<Ix3>().expect("checked shape"),
    );
    let (b, p) = (as2(b.as_ref()), as2(p.as_ref()));
    let layers = (0..d)
        .map(|dir| LayerWeights {
            w_ih: gate_rows(w.index_axis(Axis(0), dir), &GATE_FROM_ONNX),
            w_hh: gate_rows(rr.index_axis(Axis(0), dir), &GATE_FROM_ONNX),
            b_ih: b.map(|b| gate_vec(b.slice(s![dir, ..4 * h]), &GATE_FROM_ONNX)),
            b_hh: b.map(|b| gate_vec(b.slice(s![dir, 4 * h..]), &GATE_FROM_ONNX)),
            peephole: match p {
                Some(p) => PeepholeWeights::Diagonal(gate_vec(p.row(dir), &PEEPHOLE_FROM_ONNX)),
                None => PeepholeWeights::None,
            },
        })
        .collect();
    let weights = LstmWeights { config, layers };
    weights.validate()?;
    weights.check_finite()?;
    Ok(weights)
}

fn as2(a: Option<&ArrayD<f32>>) -> Option<ArrayView2<'_, f32>> {
    a.map(|a| {
        a.view()
            .into_dimensionality::<Ix2>()
            .expect("checked shape")
    })
}

/// An optional tensor, which must have `shape` when present.
fn opt(map: &TensorMap, name: &str, shape: &[usize]) -> Result<Option<ArrayD<f32>>> {
    map.contains(name).then(|| map.get(name, shape)).transpose()
}

/// Reorders the equal row blocks of `m`: block `k` of the result is block `from[k]` of `m`.
pub(crate) fn gate_rows(m: ArrayView2<f32>, from: &[usize]) -> Array2<f32> {
    let n = m.nrows() / from.len();
    let blocks: Vec<_> = from
        .iter()
        .map(|&k| m.slice(s![k * n..(k + 1) * n, ..]))
        .collect();
    concatenate(Axis(0), &blocks).expect("equal widths")
}

/// [`gate_rows`] for a vector.
pub(crate) fn gate_vec(v: ArrayView1<f32>, from: &[usize]) -> Array1<f32> {
    let n = v.len() / from.len();
    let blocks: Vec<_> = from
        .iter()
        .map(|&k| v.slice(s![k * n..(k + 1) * n]))
        .collect();
    concatenate(Axis(0), &blocks).expect("equal lengths")
}

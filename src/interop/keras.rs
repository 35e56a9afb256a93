//! Keras `LSTM` layer weights: `kernel` `(I, 4H)`, `recurrent_kernel` `(H, 4H)` and
//! `bias` `(4H)` (absent with `use_bias=False`), as `.npy` files or safetensors tensors,
//! optionally under a prefix. A `Bidirectional(LSTM)` wrapper's two layers are
//! `forward_kernel`, …, `backward_kernel`, ….
//!
//! Keras's gate order i, f, c, o is the crate's i, f, g, o; its matrices are the
//! transposes of PyTorch's. Keras has one bias, which goes to `b_ih` with a zero `b_hh`
//! (only the sum enters the math). Only the weights are in these files, so the
//! layer's activations are taken to be Keras's defaults (`tanh`, recurrent `sigmoid`).

use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};

use super::tensors::{read_tensors, TensorMap};
use crate::config::LstmConfig;
use crate::error::{LstmError, Result};
use crate::weights::{LayerWeights, LstmWeights, PeepholeWeights};

/// Name prefixes of the two directions of a `Bidirectional` wrapper.
const DIRECTIONS: [&str; 2] = ["forward_", "backward_"];

/// Reads Keras LSTM weights from a safetensors file or a directory of `.npy` files.
pub fn load(path: &Path, prefix: &str) -> Result<LstmWeights> {
    from_tensors(&read_tensors(path)?, prefix)
}

/// Builds weights from named tensors under `prefix`; the config (one layer,
/// bidirectional or not, bias or not) is inferred from the names and shapes.
pub fn from_tensors(map: &TensorMap, prefix: &str) -> Result<LstmWeights> {
    let bidirectional = map.contains(&format!("{prefix}forward_recurrent_kernel"));
    let dirs: &[&str] = if bidirectional { &DIRECTIONS } else { &[""] };
    let rk_name = format!("{prefix}{}recurrent_kernel", dirs[0]);
    let rk = map
        .shape(&rk_name)
        .ok_or_else(|| LstmError::shape(format!("tensor {rk_name}"), "[H, 4H]", "missing"))?;
    // 4·H checked: a zero-length tensor may claim any H, which is a shape error, not an overflow.
    if rk.len() != 2 || rk[0] == 0 || rk[0].checked_mul(4) != Some(rk[1]) {
        return Err(LstmError::shape(
            format!("tensor {rk_name}"),
            "[H, 4H]",
            format!("{rk:?}"),
        ));
    }
    let h = rk[0];
    let k_name = format!("{prefix}{}kernel", dirs[0]);
    let input_size = match map.shape(&k_name) {
        Some(&[i, g]) if g == 4 * h && i > 0 => i,
        found => {
            return Err(LstmError::shape(
                format!("tensor {k_name}"),
                format!("[I, {}]", 4 * h),
                found.map_or("missing".into(), |s| format!("{s:?}")),
            ))
        }
    };
    let bias = map.contains(&format!("{prefix}{}bias", dirs[0]));
    let config = LstmConfig::new(input_size, h)
        .bidirectional(bidirectional)
        .bias(bias);
    config.validate()?;

    let mut layers = Vec::new();
    for dir in dirs {
        let name = |base: &str| format!("{prefix}{dir}{base}");
        // Keras stores x·K, PyTorch (and this crate) W·x: W = Kᵀ.
        let transposed = |base: &str, rows: usize| -> Result<Array2<f32>> {
            let k = map.get(&name(base), &[rows, 4 * h])?;
            Ok(k.into_dimensionality::<Ix2>()
                .expect("checked shape")
                .reversed_axes()
                .as_standard_layout()
                .into_owned())
        };
        let w_ih = transposed("kernel", input_size)?;
        let w_hh = transposed("recurrent_kernel", h)?;
        let (b_ih, b_hh) = if bias {
            let b = map.get(&name("bias"), &[4 * h])?;
            let b = b.into_dimensionality::<Ix1>().expect("checked shape");
            (Some(b), Some(Array1::zeros(4 * h)))
        } else {
            (None, None)
        };
        layers.push(LayerWeights {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            peephole: PeepholeWeights::None,
        });
    }
    let weights = LstmWeights { config, layers };
    weights.validate()?;
    weights.check_finite()?;
    Ok(weights)
}

//! PyTorch `nn.LSTM` state dicts (safetensors): `weight_ih_l{k}[_reverse]`, `weight_hh_…`,
//! `bias_ih_…`, `bias_hh_…`, optionally under a prefix such as `lstm.`. PyTorch's gate
//! order (i, f, g, o) is the crate's own, so no reordering is needed. The crate's own
//! peephole parameters, which PyTorch lacks, use `weight_peephole_…` (`[3H]`, Diagonal)
//! and `weight_ch_…` (`[4H, H]`, Full).

use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};

use super::tensors::TensorMap;
use crate::config::{LstmConfig, Peephole};
use crate::error::{LstmError, Result};
use crate::weights::{LayerWeights, LstmWeights, PeepholeWeights};

/// Reads an LSTM from a safetensors state dict; the config is inferred from the
/// tensors (layers, directions, sizes, bias, peepholes). `batch_first` is not stored
/// in a state dict: set it on the returned config if needed.
pub fn load_safetensors(path: &Path, prefix: &str) -> Result<LstmWeights> {
    from_tensors(&TensorMap::read_safetensors(path)?, prefix)
}

/// Builds weights from named tensors under `prefix`.
pub fn from_tensors(map: &TensorMap, prefix: &str) -> Result<LstmWeights> {
    let config = infer_config(map, prefix)?;
    let mut layers = Vec::new();
    for l in 0..config.num_layers {
        for d in 0..config.num_directions() {
            layers.push(layer(map, prefix, &config, l, d)?);
        }
    }
    let weights = LstmWeights { config, layers };
    weights.validate()?;
    weights.check_finite()?;
    Ok(weights)
}

/// `{prefix}{base}_l{l}[_reverse]`, PyTorch's name of one layer-direction's tensor.
pub(super) fn tensor_name(prefix: &str, base: &str, l: usize, d: usize) -> String {
    format!("{prefix}{base}_{}", LstmWeights::suffix(l, d))
}

/// The config the tensors under `prefix` describe: sizes from layer 0's matrices,
/// then layers, directions, bias and peepholes from which names exist. Errors on
/// missing or inconsistent layer-0 matrices and on sizes [`LstmConfig::validate`]
/// refuses (checked before any weight is copied).
fn infer_config(map: &TensorMap, prefix: &str) -> Result<LstmConfig> {
    let name = |base: &str, l: usize, d: usize| tensor_name(prefix, base, l, d);
    let first = name("weight_ih", 0, 0);
    let ih = map
        .shape(&first)
        .ok_or_else(|| LstmError::shape(format!("tensor {first}"), "[4H, I]", "missing"))?
        .to_vec();
    let hh_name = name("weight_hh", 0, 0);
    let hh = map
        .shape(&hh_name)
        .ok_or_else(|| LstmError::shape(format!("tensor {hh_name}"), "[4H, H]", "missing"))?
        .to_vec();
    // Zero sizes first: a zero-length tensor may claim any other dimension, so 4·H
    // is computed checked (a huge claimed H is a shape error, not an overflow).
    if ih.len() != 2
        || hh.len() != 2
        || hh[1] == 0
        || ih[1] == 0
        || hh[1].checked_mul(4) != Some(hh[0])
        || ih[0] != hh[0]
    {
        return Err(LstmError::shape(
            format!("tensors {first} / {hh_name}"),
            "[4H, I] / [4H, H]",
            format!("{ih:?} / {hh:?}"),
        ));
    }
    let num_layers = (0..)
        .take_while(|&l| map.contains(&name("weight_ih", l, 0)))
        .count();
    let peephole = if map.contains(&name("weight_ch", 0, 0)) {
        Peephole::Full
    } else if map.contains(&name("weight_peephole", 0, 0)) {
        Peephole::Diagonal
    } else {
        Peephole::None
    };
    let config = LstmConfig::new(ih[1], hh[1])
        .layers(num_layers)
        .bidirectional(map.contains(&name("weight_ih", 0, 1)))
        .bias(map.contains(&name("bias_ih", 0, 0)))
        .peephole(peephole);
    config.validate()?;
    Ok(config)
}

/// Layer `l`, direction `d`: each tensor must have the shape `config` gives it.
fn layer(
    map: &TensorMap,
    prefix: &str,
    config: &LstmConfig,
    l: usize,
    d: usize,
) -> Result<LayerWeights> {
    let h = config.hidden_size;
    let m2 = |base: &str, rows: usize, cols: usize| -> Result<Array2<f32>> {
        Ok(map
            .get(&tensor_name(prefix, base, l, d), &[rows, cols])?
            .into_dimensionality::<Ix2>()
            .expect("checked shape"))
    };
    let v1 = |base: &str, n: usize| -> Result<Array1<f32>> {
        Ok(map
            .get(&tensor_name(prefix, base, l, d), &[n])?
            .into_dimensionality::<Ix1>()
            .expect("checked shape"))
    };
    let (b_ih, b_hh) = if config.bias {
        (Some(v1("bias_ih", 4 * h)?), Some(v1("bias_hh", 4 * h)?))
    } else {
        (None, None)
    };
    Ok(LayerWeights {
        w_ih: m2("weight_ih", 4 * h, config.layer_input_size(l))?,
        w_hh: m2("weight_hh", 4 * h, h)?,
        b_ih,
        b_hh,
        peephole: match config.peephole {
            Peephole::None => PeepholeWeights::None,
            Peephole::Diagonal => PeepholeWeights::Diagonal(v1("weight_peephole", 3 * h)?),
            Peephole::Full => PeepholeWeights::Full(m2("weight_ch", 4 * h, h)?),
        },
    })
}

/// The weights as named tensors under PyTorch's names (plus the crate's peephole names).
pub fn to_tensors(weights: &LstmWeights, prefix: &str, map: &mut TensorMap) -> Result<()> {
    weights.validate()?;
    let c = &weights.config;
    for l in 0..c.num_layers {
        for d in 0..c.num_directions() {
            let w = &weights.layers[weights.index(l, d)];
            let sfx = LstmWeights::suffix(l, d);
            let mut put = |base: &str, t: ndarray::ArrayD<f32>| {
                map.tensors.insert(format!("{prefix}{base}_{sfx}"), t);
            };
            put("weight_ih", w.w_ih.clone().into_dyn());
            put("weight_hh", w.w_hh.clone().into_dyn());
            if let (Some(bi), Some(bh)) = (&w.b_ih, &w.b_hh) {
                put("bias_ih", bi.clone().into_dyn());
                put("bias_hh", bh.clone().into_dyn());
            }
            match &w.peephole {
                PeepholeWeights::None => {}
                PeepholeWeights::Diagonal(p) => put("weight_peephole", p.clone().into_dyn()),
                PeepholeWeights::Full(m) => put("weight_ch", m.clone().into_dyn()),
            }
        }
    }
    Ok(())
}

/// Writes a safetensors file that `torch.nn.LSTM.load_state_dict` accepts
/// (for configs without peepholes, which PyTorch does not have).
pub fn save_safetensors(weights: &LstmWeights, path: &Path) -> Result<()> {
    weights.validate()?;
    let mut map = TensorMap::default();
    to_tensors(weights, "", &mut map)?;
    let bytes = map.to_safetensors_bytes()?;
    std::fs::write(path, bytes).map_err(|e| LstmError::io(path, e))
}

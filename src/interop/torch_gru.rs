//! PyTorch `nn.GRU` state dicts: the same names as `nn.LSTM` (`weight_ih_l{k}[_reverse]`,
//! `weight_hh_…`, `bias_ih_…`, `bias_hh_…`) with 3H gate rows (r, z, n), the crate's
//! own order. A state dict does not say `batch_first`; set it on the config if needed.

use ndarray::{Array1, Array2, Ix1, Ix2};

use super::tensors::TensorMap;
use super::torch::tensor_name;
use crate::error::{LstmError, Result};
use crate::gru::{GruConfig, GruLayerWeights, GruWeights};
use crate::weights::LstmWeights;

/// Builds GRU weights from named tensors under `prefix`; the config is inferred.
pub fn gru_from_tensors(map: &TensorMap, prefix: &str) -> Result<GruWeights> {
    let config = infer_gru_config(map, prefix)?;
    let h = config.hidden_size;
    let mut layers = Vec::new();
    for l in 0..config.num_layers {
        for d in 0..config.num_directions() {
            let m2 = |base: &str, cols: usize| -> Result<Array2<f32>> {
                let t = map.get(&tensor_name(prefix, base, l, d), &[3 * h, cols])?;
                Ok(t.into_dimensionality::<Ix2>().expect("checked shape"))
            };
            let v1 = |base: &str| -> Result<Array1<f32>> {
                let t = map.get(&tensor_name(prefix, base, l, d), &[3 * h])?;
                Ok(t.into_dimensionality::<Ix1>().expect("checked shape"))
            };
            let (b_ih, b_hh) = match config.bias {
                true => (Some(v1("bias_ih")?), Some(v1("bias_hh")?)),
                false => (None, None),
            };
            layers.push(GruLayerWeights {
                w_ih: m2("weight_ih", config.layer_input_size(l))?,
                w_hh: m2("weight_hh", h)?,
                b_ih,
                b_hh,
            });
        }
    }
    let weights = GruWeights { config, layers };
    weights.validate()?;
    weights.check_finite()?;
    Ok(weights)
}

/// Sizes from layer 0's matrices (`[3H, I]`, `[3H, H]`), then layers, directions and
/// bias from which names exist.
fn infer_gru_config(map: &TensorMap, prefix: &str) -> Result<GruConfig> {
    let name = |base: &str, l: usize, d: usize| tensor_name(prefix, base, l, d);
    let (ih_name, hh_name) = (name("weight_ih", 0, 0), name("weight_hh", 0, 0));
    let shape = |n: &str| {
        map.shape(n)
            .map(<[usize]>::to_vec)
            .ok_or_else(|| LstmError::shape(format!("tensor {n}"), "[3H, ·]", "missing"))
    };
    let (ih, hh) = (shape(&ih_name)?, shape(&hh_name)?);
    if ih.len() != 2
        || hh.len() != 2
        || hh[1] == 0
        || ih[1] == 0
        || hh[1].checked_mul(3) != Some(hh[0])
        || ih[0] != hh[0]
    {
        return Err(LstmError::shape(
            format!("GRU tensors {ih_name} / {hh_name}"),
            "[3H, I] / [3H, H]",
            format!("{ih:?} / {hh:?}"),
        ));
    }
    let num_layers = (0..)
        .take_while(|&l| map.contains(&name("weight_ih", l, 0)))
        .count();
    let config = GruConfig::new(ih[1], hh[1])
        .layers(num_layers)
        .bidirectional(map.contains(&name("weight_ih", 0, 1)))
        .bias(map.contains(&name("bias_ih", 0, 0)));
    config.validate()?;
    Ok(config)
}

/// The weights as named tensors under PyTorch's names (`nn.GRU.load_state_dict` takes them).
pub fn gru_to_tensors(weights: &GruWeights, prefix: &str, map: &mut TensorMap) -> Result<()> {
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
        }
    }
    Ok(())
}

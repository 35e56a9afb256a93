//! PyTorch `nn.LSTM(proj_size = P)` state dicts: the LSTM's names plus
//! `weight_hr_l{k}[_reverse]` `[P, H]`; `weight_hh` is `[4H, P]`.

use ndarray::{Array1, Array2, Ix1, Ix2};

use super::tensors::TensorMap;
use super::torch::tensor_name;
use crate::error::{LstmError, Result};
use crate::lstmp::{LstmpConfig, LstmpLayerWeights, LstmpWeights};
use crate::weights::LstmWeights;

/// Whether the tensors under `prefix` are a projected LSTM (they have `weight_hr_l0`).
pub fn is_lstmp(map: &TensorMap, prefix: &str) -> bool {
    map.contains(&tensor_name(prefix, "weight_hr", 0, 0))
}

/// Builds LSTMP weights from named tensors under `prefix`; the config is inferred.
pub fn lstmp_from_tensors(map: &TensorMap, prefix: &str) -> Result<LstmpWeights> {
    let name = |base: &str, l: usize, d: usize| tensor_name(prefix, base, l, d);
    let hr = name("weight_hr", 0, 0);
    let ih = name("weight_ih", 0, 0);
    let shape = |n: &str| {
        map.shape(n)
            .map(<[usize]>::to_vec)
            .ok_or_else(|| LstmError::shape(format!("tensor {n}"), "present", "missing"))
    };
    let (hr_shape, ih_shape) = (shape(&hr)?, shape(&ih)?);
    let [p, h] = hr_shape[..] else {
        return Err(LstmError::shape(
            format!("tensor {hr}"),
            "[P, H]",
            format!("{hr_shape:?}"),
        ));
    };
    let [rows, i] = ih_shape[..] else {
        return Err(LstmError::shape(
            format!("tensor {ih}"),
            "[4H, I]",
            format!("{ih_shape:?}"),
        ));
    };
    if h.checked_mul(4) != Some(rows) {
        return Err(LstmError::shape(
            format!("tensors {ih} / {hr}"),
            "[4H, I] / [P, H]",
            format!("{ih_shape:?} / {hr_shape:?}"),
        ));
    }
    let layers = (0..)
        .take_while(|&l| map.contains(&name("weight_ih", l, 0)))
        .count();
    let config = LstmpConfig::new(i, h, p)
        .layers(layers)
        .bidirectional(map.contains(&name("weight_ih", 0, 1)))
        .bias(map.contains(&name("bias_ih", 0, 0)));
    config.validate()?;
    let mut out = Vec::new();
    for l in 0..config.num_layers {
        for d in 0..config.num_directions() {
            let m2 = |base: &str, r: usize, c: usize| -> Result<Array2<f32>> {
                Ok(map
                    .get(&name(base, l, d), &[r, c])?
                    .into_dimensionality::<Ix2>()
                    .expect("checked shape"))
            };
            let v1 = |base: &str| -> Result<Array1<f32>> {
                Ok(map
                    .get(&name(base, l, d), &[4 * h])?
                    .into_dimensionality::<Ix1>()
                    .expect("checked shape"))
            };
            let (b_ih, b_hh) = match config.bias {
                true => (Some(v1("bias_ih")?), Some(v1("bias_hh")?)),
                false => (None, None),
            };
            out.push(LstmpLayerWeights {
                w_ih: m2("weight_ih", 4 * h, config.layer_input_size(l))?,
                w_hh: m2("weight_hh", 4 * h, p)?,
                b_ih,
                b_hh,
                w_hr: m2("weight_hr", p, h)?,
            });
        }
    }
    let weights = LstmpWeights {
        config,
        layers: out,
    };
    weights.validate()?;
    Ok(weights)
}

/// The weights under PyTorch's names (`nn.LSTM(proj_size=P).load_state_dict` takes them).
pub fn lstmp_to_tensors(weights: &LstmpWeights, prefix: &str, map: &mut TensorMap) -> Result<()> {
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
            put("weight_hr", w.w_hr.clone().into_dyn());
        }
    }
    Ok(())
}

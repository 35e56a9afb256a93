//! PyTorch `nn.LSTM(proj_size = P)` state dicts: the LSTM's names plus
//! `weight_hr_l{k}[_reverse]` `[P, H]`; `weight_hh` is `[4H, P]`.

use super::tensors::TensorMap;
use super::torch::{put_cell, stack_flags, tensor_name, CellTensors};
use crate::error::{LstmError, Result};
use crate::lstmp::{LstmpConfig, LstmpLayerWeights, LstmpWeights};

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
    let (layers, bidirectional, bias) = stack_flags(map, prefix);
    let config = LstmpConfig::new(i, h, p)
        .layers(layers)
        .bidirectional(bidirectional)
        .bias(bias);
    config.validate()?;
    let mut out = Vec::new();
    for l in 0..config.num_layers {
        for d in 0..config.num_directions() {
            let cell = CellTensors { map, prefix, l, d };
            let (b_ih, b_hh) = cell.biases(config.bias, 4 * h)?;
            out.push(LstmpLayerWeights {
                w_ih: cell.matrix("weight_ih", 4 * h, config.layer_input_size(l))?,
                w_hh: cell.matrix("weight_hh", 4 * h, p)?,
                b_ih,
                b_hh,
                w_hr: cell.matrix("weight_hr", p, h)?,
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
            let mut put = put_cell(map, prefix, l, d, [&w.w_ih, &w.w_hh], [&w.b_ih, &w.b_hh]);
            put("weight_hr", w.w_hr.clone().into_dyn());
        }
    }
    Ok(())
}

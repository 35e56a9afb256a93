//! PyTorch `nn.GRU` state dicts: the same names as `nn.LSTM` (`weight_ih_l{k}[_reverse]`,
//! `weight_hh_…`, `bias_ih_…`, `bias_hh_…`) with 3H gate rows (r, z, n), the crate's
//! own order. A state dict does not say `batch_first`; set it on the config if needed.
//! PyTorch's GRU always resets after the product; a Keras-style `reset_after = false`
//! GRU saved here says so in the file's metadata (`"reset_after": "false"`), which
//! reading honours (absent: `true`, PyTorch's form).

use super::tensors::TensorMap;
use super::torch::{layer0_sizes, put_cell, stack_flags, CellTensors};
use crate::error::{LstmError, Result};

/// The metadata key that keeps a GRU's `reset_after` (see the module doc).
const RESET_AFTER: &str = "reset_after";
use crate::gru::{GruConfig, GruLayerWeights, GruWeights};

/// Builds GRU weights from named tensors under `prefix`; the config is inferred.
pub fn gru_from_tensors(map: &TensorMap, prefix: &str) -> Result<GruWeights> {
    let config = infer_gru_config(map, prefix)?;
    let h = config.hidden_size;
    let mut layers = Vec::new();
    for l in 0..config.num_layers {
        for d in 0..config.num_directions() {
            let cell = CellTensors { map, prefix, l, d };
            let (b_ih, b_hh) = cell.biases(config.bias, 3 * h)?;
            layers.push(GruLayerWeights {
                w_ih: cell.matrix("weight_ih", 3 * h, config.layer_input_size(l))?,
                w_hh: cell.matrix("weight_hh", 3 * h, h)?,
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
    let (input, hidden) = layer0_sizes(map, prefix, 3)?;
    let (layers, bidirectional, bias) = stack_flags(map, prefix);
    let reset_after = match map.metadata.get(RESET_AFTER).map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(LstmError::format(
                "metadata reset_after",
                format!("must be \"true\" or \"false\", got {other:?}"),
            ))
        }
    };
    let config = GruConfig::new(input, hidden)
        .layers(layers)
        .bidirectional(bidirectional)
        .bias(bias)
        .reset_after(reset_after);
    config.validate()?;
    Ok(config)
}

/// The weights as named tensors under PyTorch's names (`nn.GRU.load_state_dict` takes them).
pub fn gru_to_tensors(weights: &GruWeights, prefix: &str, map: &mut TensorMap) -> Result<()> {
    weights.validate()?;
    let c = &weights.config;
    map.metadata
        .insert(RESET_AFTER.into(), c.reset_after.to_string());
    for l in 0..c.num_layers {
        for d in 0..c.num_directions() {
            let w = &weights.layers[weights.index(l, d)];
            // A GRU has no tensors beyond the four common ones: the writer goes unused.
            let _ = put_cell(map, prefix, l, d, [&w.w_ih, &w.w_hh], [&w.b_ih, &w.b_hh]);
        }
    }
    Ok(())
}

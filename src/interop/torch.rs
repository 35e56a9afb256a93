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

/// `(I, H)` from layer 0's `weight_ih` `[G·H, I]` and `weight_hh` `[G·H, H]` (`G` gate
/// blocks: 4 for an LSTM, 3 for a GRU), or a shape error naming both.
pub(super) fn layer0_sizes(map: &TensorMap, prefix: &str, gates: usize) -> Result<(usize, usize)> {
    let (ih_name, hh_name) = (
        tensor_name(prefix, "weight_ih", 0, 0),
        tensor_name(prefix, "weight_hh", 0, 0),
    );
    let want = format!("[{gates}H, I] / [{gates}H, H]");
    let shape = |n: &str| {
        map.shape(n)
            .map(<[usize]>::to_vec)
            .ok_or_else(|| LstmError::shape(format!("tensor {n}"), want.clone(), "missing"))
    };
    let (ih, hh) = (shape(&ih_name)?, shape(&hh_name)?);
    // Zero sizes first: a zero-length tensor may claim any other dimension, so G·H
    // is computed checked (a huge claimed H is a shape error, not an overflow).
    if ih.len() != 2
        || hh.len() != 2
        || hh[1] == 0
        || ih[1] == 0
        || hh[1].checked_mul(gates) != Some(hh[0])
        || ih[0] != hh[0]
    {
        return Err(LstmError::shape(
            format!("tensors {ih_name} / {hh_name}"),
            want,
            format!("{ih:?} / {hh:?}"),
        ));
    }
    Ok((ih[1], hh[1]))
}

/// Layers (counted by `weight_ih_l{k}`), a reverse direction and biases, told by which
/// names exist under `prefix`.
pub(super) fn stack_flags(map: &TensorMap, prefix: &str) -> (usize, bool, bool) {
    let has = |base: &str, l: usize, d: usize| map.contains(&tensor_name(prefix, base, l, d));
    let layers = (0..).take_while(|&l| has("weight_ih", l, 0)).count();
    (layers, has("weight_ih", 0, 1), has("bias_ih", 0, 0))
}

/// `(b_ih, b_hh)`, both `None` without bias.
type Biases = (Option<Array1<f32>>, Option<Array1<f32>>);

/// One layer-direction's tensors, read with the shapes its config gives them.
pub(super) struct CellTensors<'a> {
    pub map: &'a TensorMap,
    pub prefix: &'a str,
    pub l: usize,
    pub d: usize,
}

impl CellTensors<'_> {
    pub fn matrix(&self, base: &str, rows: usize, cols: usize) -> Result<Array2<f32>> {
        let name = tensor_name(self.prefix, base, self.l, self.d);
        let t = self.map.get(&name, &[rows, cols])?;
        Ok(t.into_dimensionality::<Ix2>().expect("checked shape"))
    }
    pub fn vector(&self, base: &str, n: usize) -> Result<Array1<f32>> {
        let name = tensor_name(self.prefix, base, self.l, self.d);
        let t = self.map.get(&name, &[n])?;
        Ok(t.into_dimensionality::<Ix1>().expect("checked shape"))
    }
    /// `bias_ih` and `bias_hh` `[n]`, or both `None` for a stack without bias.
    pub fn biases(&self, bias: bool, n: usize) -> Result<Biases> {
        Ok(match bias {
            true => (
                Some(self.vector("bias_ih", n)?),
                Some(self.vector("bias_hh", n)?),
            ),
            false => (None, None),
        })
    }
}

/// Writes one layer-direction's `weight_ih`, `weight_hh` and (when present) biases
/// under PyTorch's names; returns a writer for the cell's other tensors.
pub(super) fn put_cell<'m>(
    map: &'m mut TensorMap,
    prefix: &str,
    l: usize,
    d: usize,
    [w_ih, w_hh]: [&Array2<f32>; 2],
    [b_ih, b_hh]: [&Option<Array1<f32>>; 2],
) -> impl FnMut(&str, ndarray::ArrayD<f32>) + 'm {
    let (prefix, sfx) = (prefix.to_string(), LstmWeights::suffix(l, d));
    let mut put = move |base: &str, t: ndarray::ArrayD<f32>| {
        map.tensors.insert(format!("{prefix}{base}_{sfx}"), t);
    };
    put("weight_ih", w_ih.clone().into_dyn());
    put("weight_hh", w_hh.clone().into_dyn());
    if let (Some(bi), Some(bh)) = (b_ih, b_hh) {
        put("bias_ih", bi.clone().into_dyn());
        put("bias_hh", bh.clone().into_dyn());
    }
    put
}

/// The config the tensors under `prefix` describe: sizes from layer 0's matrices,
/// then layers, directions, bias and peepholes from which names exist. Errors on
/// missing or inconsistent layer-0 matrices and on sizes [`LstmConfig::validate`]
/// refuses (checked before any weight is copied).
fn infer_config(map: &TensorMap, prefix: &str) -> Result<LstmConfig> {
    let name = |base: &str, l: usize, d: usize| tensor_name(prefix, base, l, d);
    let (input, hidden) = layer0_sizes(map, prefix, 4)?;
    let (num_layers, bidirectional, bias) = stack_flags(map, prefix);
    let peephole = if map.contains(&name("weight_ch", 0, 0)) {
        Peephole::Full
    } else if map.contains(&name("weight_peephole", 0, 0)) {
        Peephole::Diagonal
    } else {
        Peephole::None
    };
    let config = LstmConfig::new(input, hidden)
        .layers(num_layers)
        .bidirectional(bidirectional)
        .bias(bias)
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
    let cell = CellTensors { map, prefix, l, d };
    let (b_ih, b_hh) = cell.biases(config.bias, 4 * h)?;
    Ok(LayerWeights {
        w_ih: cell.matrix("weight_ih", 4 * h, config.layer_input_size(l))?,
        w_hh: cell.matrix("weight_hh", 4 * h, h)?,
        b_ih,
        b_hh,
        peephole: match config.peephole {
            Peephole::None => PeepholeWeights::None,
            Peephole::Diagonal => PeepholeWeights::Diagonal(cell.vector("weight_peephole", 3 * h)?),
            Peephole::Full => PeepholeWeights::Full(cell.matrix("weight_ch", 4 * h, h)?),
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
            let mut put = put_cell(map, prefix, l, d, [&w.w_ih, &w.w_hh], [&w.b_ih, &w.b_hh]);
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

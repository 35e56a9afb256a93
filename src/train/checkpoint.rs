//! Checkpoints: safetensors with PyTorch's parameter names — the LSTM under `lstm.`
//! (as an `nn.LSTM` attribute called `lstm`) and the Dense layer as `fc.weight`,
//! `fc.bias` — so `model.load_state_dict` in PyTorch reads them.

use std::path::Path;

use ndarray::{Ix1, Ix2};

use super::classifier::{ClassifierParams, Dense};
use crate::config::LstmConfig;
use crate::error::{LstmError, Result};
use crate::interop::{tensors::TensorMap, torch};

/// Writes `params` (and `batch_first` as metadata) to `path`.
pub fn save_checkpoint(path: &Path, params: &ClassifierParams) -> Result<()> {
    params.validate()?;
    let mut map = TensorMap::default();
    torch::to_tensors(&params.lstm, "lstm.", &mut map)?;
    map.tensors
        .insert("fc.weight".into(), params.dense.weight.clone().into_dyn());
    map.tensors
        .insert("fc.bias".into(), params.dense.bias.clone().into_dyn());
    map.metadata.insert(
        "batch_first".into(),
        params.lstm.config.batch_first.to_string(),
    );
    map.metadata.insert(
        "format".into(),
        "lstm-wgpu classifier: lstm.* = torch.nn.LSTM, fc.* = torch.nn.Linear".into(),
    );
    std::fs::write(path, map.to_safetensors_bytes()?).map_err(|e| LstmError::io(path, e))
}

/// Reads a checkpoint. With `expect`, a checkpoint of another shape is an error that
/// names the first difference.
pub fn load_checkpoint(
    path: &Path,
    expect: Option<(&LstmConfig, usize)>,
) -> Result<ClassifierParams> {
    let map = TensorMap::read_safetensors(path)?;
    let mut lstm = torch::from_tensors(&map, "lstm.")?;
    lstm.config.batch_first = map.metadata.get("batch_first").is_some_and(|v| v == "true");
    let fw = map
        .tensors
        .get("fc.weight")
        .ok_or_else(|| LstmError::shape("tensor fc.weight", "[C, D·H]", "missing"))?;
    let classes = fw.shape().first().copied().unwrap_or(0);
    let features = lstm.config.output_size();
    let weight = map
        .get("fc.weight", &[classes, features])?
        .into_dimensionality::<Ix2>()
        .expect("checked shape");
    let bias = map
        .get("fc.bias", &[classes])?
        .into_dimensionality::<Ix1>()
        .expect("checked shape");
    let params = ClassifierParams {
        lstm,
        dense: Dense { weight, bias },
    };
    if let Some((cfg, want_classes)) = expect {
        let got = &params.lstm.config;
        let mut cfg = cfg.clone();
        cfg.batch_first = got.batch_first;
        if *got != cfg || classes != want_classes {
            return Err(LstmError::shape(
                format!("checkpoint {}", path.display()),
                format!("{cfg:?} with {want_classes} classes"),
                format!("{got:?} with {classes} classes"),
            ));
        }
    }
    Ok(params)
}

//! Checkpoints: safetensors with PyTorch's parameter names — the LSTM under `lstm.`
//! (as an `nn.LSTM` attribute called `lstm`) and the Dense layer as `fc.weight`,
//! `fc.bias` — so `model.load_state_dict` in PyTorch reads them. Every file is written
//! atomically ([`write_atomic`]): a crash mid-write never damages the previous one.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Ix1, Ix2};

use super::classifier::{ClassifierParams, Dense, GruClassifierParams};
use crate::config::LstmConfig;
use crate::error::{LstmError, Result};
use crate::interop::{tensors::TensorMap, torch, torch_gru};

/// Writes `params` (and `batch_first` as metadata) to `path`, atomically.
pub fn save_checkpoint(path: &Path, params: &ClassifierParams) -> Result<()> {
    let mut map = TensorMap::default();
    put_params(&mut map, "", params)?;
    map.metadata.insert(
        "format".into(),
        "lstm-wgpu classifier: lstm.* = torch.nn.LSTM, fc.* = torch.nn.Linear".into(),
    );
    write_atomic(path, &map.to_safetensors_bytes()?)
}

/// Reads a checkpoint. With `expect`, a checkpoint of another shape is an error that
/// names the first difference.
pub fn load_checkpoint(
    path: &Path,
    expect: Option<(&LstmConfig, usize)>,
) -> Result<ClassifierParams> {
    let map = TensorMap::read_safetensors(path)?;
    let params = take_params(&map, "")?;
    if let Some((cfg, want_classes)) = expect {
        let got = &params.lstm.config;
        let classes = params.dense.classes();
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

/// Adds `params` to `map` as `{prefix}lstm.*` and `{prefix}fc.*` (and `batch_first`).
pub(crate) fn put_params(
    map: &mut TensorMap,
    prefix: &str,
    params: &ClassifierParams,
) -> Result<()> {
    params.validate()?;
    torch::to_tensors(&params.lstm, &format!("{prefix}lstm."), map)?;
    let d = &params.dense;
    let tensors = &mut map.tensors;
    tensors.insert(format!("{prefix}fc.weight"), d.weight.clone().into_dyn());
    tensors.insert(format!("{prefix}fc.bias"), d.bias.clone().into_dyn());
    map.metadata.insert(
        "batch_first".into(),
        params.lstm.config.batch_first.to_string(),
    );
    Ok(())
}

/// Reads what [`put_params`] wrote under `prefix`.
pub(crate) fn take_params(map: &TensorMap, prefix: &str) -> Result<ClassifierParams> {
    let mut lstm = torch::from_tensors(map, &format!("{prefix}lstm."))?;
    lstm.config.batch_first = batch_first(map);
    let dense = take_dense(map, prefix, lstm.config.output_size())?;
    let params = ClassifierParams { lstm, dense };
    params.validate()?;
    Ok(params)
}

/// Adds a GRU classifier's `params` to `map` as `{prefix}gru.*` (`nn.GRU`'s names, as
/// `lstm-wgpu train --cell gru` writes its model) and `{prefix}fc.*`.
pub fn put_gru_params(
    map: &mut TensorMap,
    prefix: &str,
    params: &GruClassifierParams,
) -> Result<()> {
    torch_gru::gru_to_tensors(&params.gru, &format!("{prefix}gru."), map)?;
    let d = &params.dense;
    let tensors = &mut map.tensors;
    tensors.insert(format!("{prefix}fc.weight"), d.weight.clone().into_dyn());
    tensors.insert(format!("{prefix}fc.bias"), d.bias.clone().into_dyn());
    map.metadata.insert(
        "batch_first".into(),
        params.gru.config.batch_first.to_string(),
    );
    Ok(())
}

/// Reads what [`put_gru_params`] wrote under `prefix`.
pub(crate) fn take_gru_params(map: &TensorMap, prefix: &str) -> Result<GruClassifierParams> {
    let mut gru = torch_gru::gru_from_tensors(map, &format!("{prefix}gru."))?;
    gru.config.batch_first = batch_first(map);
    let dense = take_dense(map, prefix, gru.config.output_size())?;
    Ok(GruClassifierParams { gru, dense })
}

fn batch_first(map: &TensorMap) -> bool {
    map.metadata.get("batch_first").is_some_and(|v| v == "true")
}

/// `{prefix}fc.weight` `[C, features]` and `{prefix}fc.bias` `[C]`.
fn take_dense(map: &TensorMap, prefix: &str, features: usize) -> Result<Dense> {
    let (fw, fb) = (format!("{prefix}fc.weight"), format!("{prefix}fc.bias"));
    let classes = map
        .tensors
        .get(&fw)
        .ok_or_else(|| LstmError::shape(format!("tensor {fw}"), "[C, D·H]", "missing"))?
        .shape()
        .first()
        .copied()
        .unwrap_or(0);
    let weight = map
        .get(&fw, &[classes, features])?
        .into_dimensionality::<Ix2>()
        .expect("checked shape");
    let bias = map
        .get(&fb, &[classes])?
        .into_dimensionality::<Ix1>()
        .expect("checked shape");
    Ok(Dense { weight, bias })
}

/// Where [`write_atomic`] stages `path` before renaming it into place.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed to disk
/// and then renamed over `path`: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable (a directory fsync; not possible everywhere).
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LstmError::io(path, e)
    })
}

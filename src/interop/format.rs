//! Loading weights of any supported framework: which file kind, which framework
//! (from the tensor names, unless the caller says), and under which name prefix.
//!
//! This module sits on top: it uses the framework importers (`torch`, `keras`, `onnx`)
//! and the tensor reader (`tensors`); none of them uses it.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::tensors::TensorMap;
use super::{keras, keras_model, onnx, torch, torch_gru, torch_lstmp};
use crate::error::{LstmError, Result};
use crate::gru::GruWeights;
use crate::lstmp::LstmpWeights;
use crate::weights::LstmWeights;

/// Re-exported from [`super::tensors`], where tensor files are read.
pub use super::tensors::read_tensors;

/// The framework whose tensor names and layout a weight file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `torch.nn.LSTM` state dict: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, …
    Torch,
    /// Keras `LSTM`: `kernel`, `recurrent_kernel`, `bias` (`forward_…`/`backward_…` when bidirectional).
    Keras,
    /// ONNX `LSTM` operator inputs: `W`, `R`, `B`, `P`.
    Onnx,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Torch, Format::Keras, Format::Onnx];

    /// The prefixes under which `map` holds this format's tensors (`""` for bare names).
    fn prefixes(self, map: &TensorMap) -> Vec<String> {
        let mut found: Vec<String> = map
            .tensors
            .keys()
            .filter_map(|k| match self {
                Format::Torch => k.strip_suffix("weight_ih_l0").map(str::to_string),
                Format::Keras => k.strip_suffix("recurrent_kernel").map(|p| {
                    let p = p.strip_suffix("forward_").unwrap_or(p);
                    p.strip_suffix("backward_").unwrap_or(p).to_string()
                }),
                Format::Onnx => k
                    .strip_suffix('R')
                    .filter(|p| map.contains(&format!("{p}W")))
                    .map(str::to_string),
            })
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Builds weights from this format's tensors under `prefix`.
    pub fn from_tensors(self, map: &TensorMap, prefix: &str) -> Result<LstmWeights> {
        match self {
            Format::Torch => torch::from_tensors(map, prefix),
            Format::Keras => keras::from_tensors(map, prefix),
            Format::Onnx => onnx::from_tensors(map, prefix),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Format::Torch => "torch",
            Format::Keras => "keras",
            Format::Onnx => "onnx",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "torch" | "pytorch" => Ok(Format::Torch),
            "keras" => Ok(Format::Keras),
            "onnx" => Ok(Format::Onnx),
            _ => Err(format!("expected torch, keras or onnx, got {s:?}")),
        }
    }
}

/// Which format and prefix `map` holds. Either may be given; what is not given is
/// found from the tensor names. `source` names the file in messages.
pub fn detect(
    map: &TensorMap,
    source: &str,
    format: Option<Format>,
    prefix: Option<&str>,
) -> Result<(Format, String)> {
    let formats = format.map_or(Format::ALL.to_vec(), |f| vec![f]);
    let mut found: Vec<(Format, String)> = formats
        .iter()
        .flat_map(|&f| f.prefixes(map).into_iter().map(move |p| (f, p)))
        .filter(|(_, p)| prefix.is_none_or(|want| want == p))
        .collect();
    match (found.len(), format) {
        (1, _) => Ok(found.remove(0)),
        // The format's own importer then names the first missing tensor.
        (0, Some(f)) => Ok((f, prefix.unwrap_or("").to_string())),
        (0, None) => {
            let mut names: Vec<&String> = map.tensors.keys().collect();
            names.sort();
            let shown: Vec<&str> = names.iter().take(8).map(|s| s.as_str()).collect();
            Err(LstmError::format(
                source,
                format!(
                    "no LSTM weights found{}: expected PyTorch (weight_ih_l0, weight_hh_l0, …), \
                     Keras (kernel, recurrent_kernel, bias) or ONNX (W, R, B, P) tensor names; \
                     found {}{}",
                    prefix.map_or(String::new(), |p| format!(" under prefix {p:?}")),
                    shown.join(", "),
                    if names.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
            ))
        }
        _ => {
            let list: Vec<String> = found
                .iter()
                .map(|(f, p)| format!("{f} with prefix {p:?}"))
                .collect();
            Err(LstmError::format(
                source,
                format!(
                    "holds more than one LSTM ({}): say which format and prefix to use",
                    list.join("; ")
                ),
            ))
        }
    }
}

/// Loads weights from a safetensors file or a `.npy` directory in any supported format.
pub fn load(
    path: &Path,
    format: Option<Format>,
    prefix: Option<&str>,
) -> Result<(Format, LstmWeights)> {
    let map = read_tensors(path)?;
    let (format, prefix) = detect(&map, &path.display().to_string(), format, prefix)?;
    Ok((format, format.from_tensors(&map, &prefix)?))
}

/// Which recurrent cell a weight file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum CellKind {
    Lstm,
    Gru,
}

impl CellKind {
    /// "an LSTM" / "a GRU", for messages.
    pub fn describe(self) -> &'static str {
        match self {
            CellKind::Lstm => "an LSTM",
            CellKind::Gru => "a GRU",
        }
    }
}

/// The weights of either cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    Lstm(LstmWeights),
    Gru(GruWeights),
    /// An LSTM with a projection (`nn.LSTM(proj_size)`: `weight_hr_l0` present).
    Lstmp(LstmpWeights),
}

/// The cell the tensors under `prefix` describe, told by the gate blocks of the
/// recurrent matrix: 4 (i, f, g, o) for an LSTM, 3 (r, z, n) for a GRU. `None` when
/// the matrix is missing or neither (the importer then names the problem).
pub fn detect_cell(map: &TensorMap, format: Format, prefix: &str) -> Option<CellKind> {
    let (name, rows_axis, h_axis) = match format {
        Format::Torch => (format!("{prefix}weight_hh_l0"), 0, 1),
        Format::Keras if map.contains(&format!("{prefix}forward_recurrent_kernel")) => {
            (format!("{prefix}forward_recurrent_kernel"), 1, 0)
        }
        Format::Keras => (format!("{prefix}recurrent_kernel"), 1, 0),
        Format::Onnx => (format!("{prefix}R"), 1, 2),
    };
    let shape = map.shape(&name)?;
    let (rows, h) = (*shape.get(rows_axis)?, *shape.get(h_axis)?);
    match h {
        0 => None,
        h if rows == 4 * h => Some(CellKind::Lstm),
        h if rows == 3 * h => Some(CellKind::Gru),
        _ => None,
    }
}

/// [`load`] for either cell: the cell is `cell` when given (a file of the other cell is
/// an error that says so), else told by the tensors. GRUs are read from PyTorch state
/// dicts (`nn.GRU`); Keras and ONNX GRUs come in model files (`.keras`, `.onnx`).
pub fn load_model(
    path: &Path,
    format: Option<Format>,
    prefix: Option<&str>,
    cell: Option<CellKind>,
) -> Result<(Format, Model)> {
    let map = read_tensors(path)?;
    let source = path.display().to_string();
    let (format, prefix) = detect(&map, &source, format, prefix)?;
    let found = detect_cell(&map, format, &prefix);
    if let (Some(want), Some(found)) = (cell, found) {
        if want != found {
            return Err(LstmError::format(
                &source,
                format!(
                    "holds {} (its recurrent matrix has {} gate blocks), not the {} that --cell asks for",
                    found.describe(),
                    if found == CellKind::Gru { 3 } else { 4 },
                    want.describe()
                ),
            ));
        }
    }
    if format == Format::Torch
        && cell != Some(CellKind::Gru)
        && torch_lstmp::is_lstmp(&map, &prefix)
    {
        return Ok((
            format,
            Model::Lstmp(torch_lstmp::lstmp_from_tensors(&map, &prefix)?),
        ));
    }
    match (cell.or(found), format) {
        (Some(CellKind::Gru), Format::Torch) => Ok((
            format,
            Model::Gru(torch_gru::gru_from_tensors(&map, &prefix)?),
        )),
        (Some(CellKind::Gru), Format::Keras) => Ok((
            format,
            Model::Gru(keras_model::convert::gru_from_tensors(&map, &prefix)?),
        )),
        (Some(CellKind::Gru), _) => Err(LstmError::format(
            &source,
            "an ONNX GRU is read from its model file (.onnx), not from loose W/R/B tensors",
        )),
        _ => Ok((format, Model::Lstm(format.from_tensors(&map, &prefix)?))),
    }
}

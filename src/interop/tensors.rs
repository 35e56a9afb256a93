//! Named f32 tensors, the one tensor-reading layer: a safetensors file or a directory
//! of `.npy` files becomes a [`TensorMap`], with errors that name the tensor.
//!
//! The framework importers (`torch`, `keras`, `onnx`) read through this module, and
//! `format` (detection and dispatch) builds on them; this module itself depends only
//! on `npy`, never on a framework.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

use super::npy;
use crate::error::{LstmError, Result};

/// The tensors of a safetensors file, or of a directory of `.npy` files (one tensor
/// per file, named after the file: `W.npy` → `W`).
pub fn read_tensors(path: &Path) -> Result<TensorMap> {
    if path.is_dir() {
        TensorMap::read_npy_dir(path)
    } else if path.extension().is_some_and(|e| e == "npy") {
        Err(LstmError::format(
            path.display().to_string(),
            "weights are a safetensors file or a directory of .npy files, not one .npy file",
        ))
    } else {
        TensorMap::read_safetensors(path)
    }
}

/// A set of named tensors read into memory (f32, f64, i32 and i64 are converted to f32).
#[derive(Clone, Debug, Default)]
pub struct TensorMap {
    pub tensors: HashMap<String, ArrayD<f32>>,
    pub metadata: HashMap<String, String>,
}

impl TensorMap {
    /// Reads a safetensors file.
    pub fn read_safetensors(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| LstmError::io(path, e))?;
        Self::from_safetensors_bytes(&bytes)
    }

    /// Every `*.npy` file in `dir`, named after the file's stem (`W.npy` → `W`);
    /// integer files are converted to f32 as well, as [`Self::read_safetensors`] does.
    pub fn read_npy_dir(dir: &Path) -> Result<Self> {
        Ok(TensorMap {
            tensors: npy::read_dir(dir)?,
            metadata: HashMap::new(),
        })
    }

    /// Parses safetensors bytes; a truncated or corrupt file is an error, never a panic.
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, meta) = SafeTensors::read_metadata(bytes)?;
        let st = SafeTensors::deserialize(bytes)?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect(),
                Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect(),
                Dtype::I32 => data
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f32)
                    .collect(),
                other => {
                    return Err(LstmError::format(
                        format!("tensor {name}"),
                        format!("dtype {other:?} is not supported (use F32)"),
                    ))
                }
            };
            let arr = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
                .map_err(|e| LstmError::format(format!("tensor {name}"), e.to_string()))?;
            tensors.insert(name, arr);
        }
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(TensorMap { tensors, metadata })
    }

    /// The tensor `name` with exactly `shape`, or an error naming both shapes.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<ArrayD<f32>> {
        let t = self.tensors.get(name).ok_or_else(|| {
            LstmError::shape(format!("tensor {name}"), format!("{shape:?}"), "missing")
        })?;
        if t.shape() != shape {
            return Err(LstmError::shape(
                format!("tensor {name}"),
                format!("{shape:?}"),
                format!("{:?}", t.shape()),
            ));
        }
        Ok(t.clone())
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Serialises as safetensors (f32, sorted names) with the given metadata.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        let owned: Vec<(String, Vec<u8>, Vec<usize>)> = names
            .iter()
            .map(|n| {
                let t = &self.tensors[*n];
                let bytes = t.iter().flat_map(|v| v.to_le_bytes()).collect();
                ((*n).clone(), bytes, t.shape().to_vec())
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = owned
            .iter()
            .map(|(n, b, s)| {
                Ok((
                    n.clone(),
                    safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)?,
                ))
            })
            .collect::<Result<_>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        Ok(safetensors::serialize(views, meta)?)
    }
}

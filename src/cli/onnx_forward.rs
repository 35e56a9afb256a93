//! `lstm-wgpu forward --weights model.onnx`: runs a whole ONNX model file
//! (`interop::onnx_model`) on `.npy` inputs bound to its graph inputs by name, and
//! writes every graph output as `OUT/<output name>.npy`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lstm_wgpu::interop::npy;
use lstm_wgpu::interop::onnx_model::{Device, GraphInput, OnnxModel, Value};
use lstm_wgpu::{GpuContext, LstmError, Result};

/// Whether `--weights` names a `.onnx` model file (which selects this runner).
pub fn is_onnx_model(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// What `forward` passes on for a `.onnx` file.
pub struct OnnxRun<'a> {
    pub model: &'a Path,
    /// `--input`, repeated: `FILE` for a model's only input, else `NAME=FILE` each.
    pub inputs: &'a [PathBuf],
    pub out: &'a Path,
    /// The weight-file flags and whether each was given: they mean nothing for a graph.
    pub weight_file_flags: [(&'static str, bool); 7],
}

/// Loads the model, binds the inputs, runs it on the device `gpu` picks (`None`: the
/// CPU) and writes the outputs.
pub fn run(a: &OnnxRun, gpu: impl FnOnce() -> Result<Option<Arc<GpuContext>>>) -> Result<()> {
    if let Some((flag, _)) = a.weight_file_flags.iter().find(|(_, given)| *given) {
        return Err(LstmError::Config(format!(
            "{flag} does not apply to a .onnx model: its graph says how inputs are laid out; \
             bind every graph input with --input NAME=FILE.npy"
        )));
    }
    let model = OnnxModel::load(a.model)?;
    let (declared, defaults) = (model.inputs(), model.defaults());
    let list: Vec<String> = declared.iter().map(|i| i.to_string()).collect();
    eprintln!("model: {} (inputs: {})", a.model.display(), list.join("; "));
    let inputs = read_inputs(&declared, &defaults, a.inputs)?;
    let device = match gpu()? {
        Some(ctx) => {
            eprintln!("device: {}", ctx.describe());
            Device::Gpu(ctx)
        }
        None => {
            eprintln!("device: CPU");
            Device::Cpu
        }
    };
    let outputs = model.run(&inputs, &device)?;
    write_outputs(&model, a.out, &outputs)
}

/// Each `--input` read as its graph input's declared type: `FILE` alone binds the
/// model's only required input, `NAME=FILE` binds `NAME`, a default (an input with an
/// initializer) included (a path with '=' in it is taken whole when that file exists).
fn read_inputs(
    declared: &[GraphInput],
    defaults: &[GraphInput],
    args: &[PathBuf],
) -> Result<HashMap<String, Value>> {
    let mut inputs = HashMap::new();
    for arg in args {
        let text = arg.to_string_lossy();
        let (name, path) = match text.split_once('=') {
            Some((name, path)) if !arg.exists() => (name.to_string(), PathBuf::from(path)),
            _ => match declared {
                [only] => (only.name.clone(), arg.clone()),
                _ => {
                    return Err(LstmError::Config(format!(
                    "--input {text}: the model has {} inputs, so name each: --input NAME=FILE.npy",
                    declared.len()
                )))
                }
            },
        };
        let is_int = (declared.iter().chain(defaults)).any(|i| i.name == name && i.is_int());
        let value = if is_int {
            Value::Int(npy::read_i64(&path)?)
        } else {
            Value::Float(npy::read_f32(&path)?)
        };
        if inputs.insert(name.clone(), value).is_some() {
            return Err(LstmError::Config(format!("--input binds '{name}' twice")));
        }
    }
    Ok(inputs)
}

/// `OUT/<name>.npy` for every output; characters a file name should not hold become '_'.
fn write_outputs(model: &OnnxModel, dir: &Path, outputs: &[(String, Value)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| LstmError::io(dir, e))?;
    let mut written = HashMap::new();
    for (name, value) in outputs {
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Some(other) = written.insert(file.clone(), name) {
            return Err(LstmError::Config(format!(
                "outputs '{other}' and '{name}' would both be written to {file}.npy"
            )));
        }
        let path = dir.join(format!("{file}.npy"));
        match value {
            Value::Float(a) => npy::write(&path, a)?,
            Value::Int(a) if model.output_is_int32(name) => {
                npy::write(&path, &a.mapv(|v| v as i32))?
            }
            Value::Int(a) => npy::write(&path, a)?,
        }
        eprintln!(
            "wrote {} ({name}: {} {:?})",
            path.display(),
            value.type_name(),
            value.shape()
        );
    }
    Ok(())
}

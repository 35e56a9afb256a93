//! Keras 3's weight files (feature `hdf5`): `model.weights.h5`, alone or inside a
//! `.keras` zip.
//!
//! Keras 3 writes one group per layer under `layers/`, named after the layer's class
//! (`lstm`, `lstm_1`, …, not the layer's name); the layer's own name is the `name`
//! attribute of its `vars` group, which is how a group is matched to config.json.
//! Variables are numbered datasets in the layer's weight order:
//!
//! ```text
//! layers/<g>/cell/vars/{0,1,2}                   LSTM/GRU: kernel, recurrent_kernel, bias
//! layers/<g>/{forward,backward}_layer/cell/vars  Bidirectional: the same per direction
//! layers/<g>/vars/{0,1}                          Dense: kernel, bias
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hdf5_metno as hdf5;
use hdf5_metno::types::{VarLenAscii, VarLenUnicode};

use crate::error::{LstmError, Result};
use crate::interop::tensors::TensorMap;

/// Every layer's variables in `path`, named `{layer name}/{Keras variable name}`.
pub fn read_weights(path: &Path) -> Result<TensorMap> {
    let source = path.display().to_string();
    let h5err = |e: hdf5::Error| LstmError::format(&source, format!("HDF5: {e}"));
    let file = hdf5::File::open(path).map_err(h5err)?;
    let layers = file.group("layers").map_err(|_| {
        LstmError::format(
            &source,
            "no `layers` group: not a Keras 3 weights file (Keras 2's .h5 is not supported)",
        )
    })?;
    let mut map = TensorMap::default();
    for g in layers.member_names().map_err(h5err)? {
        let group = layers.group(&g).map_err(h5err)?;
        let name = layer_name(&group).map_err(h5err)?.unwrap_or(g);
        for (sub, prefix) in [
            ("cell", ""),
            ("forward_layer/cell", "forward_"),
            ("backward_layer/cell", "backward_"),
            ("", ""),
        ] {
            let vars = if sub.is_empty() {
                "vars".to_string()
            } else {
                format!("{sub}/vars")
            };
            let Ok(vars) = group.group(&vars) else {
                continue;
            };
            let names: &[&str] = if sub.is_empty() {
                &["kernel", "bias"]
            } else {
                &["kernel", "recurrent_kernel", "bias"]
            };
            read_vars(&vars, &format!("{name}/{prefix}"), names, &mut map).map_err(h5err)?;
        }
    }
    Ok(map)
}

/// The layer's name from its `vars` group (an HDF5 string attribute, as h5py writes it).
fn layer_name(group: &hdf5::Group) -> hdf5::Result<Option<String>> {
    let Ok(vars) = group.group("vars") else {
        return Ok(None);
    };
    let Ok(attr) = vars.attr("name") else {
        return Ok(None);
    };
    Ok(Some(match attr.read_scalar::<VarLenUnicode>() {
        Ok(s) => s.as_str().to_string(),
        Err(_) => attr.read_scalar::<VarLenAscii>()?.as_str().to_string(),
    }))
}

/// Datasets `0`, `1`, … of `vars` as `{prefix}{names[k]}` (`{prefix}var{k}` past the list).
fn read_vars(
    vars: &hdf5::Group,
    prefix: &str,
    names: &[&str],
    map: &mut TensorMap,
) -> hdf5::Result<()> {
    let mut k = 0;
    while vars.link_exists(&k.to_string()) {
        let data = vars.dataset(&k.to_string())?.read_dyn::<f32>()?;
        let name = names.get(k).map_or(format!("var{k}"), |n| n.to_string());
        map.tensors.insert(format!("{prefix}{name}"), data);
        k += 1;
    }
    Ok(())
}

/// `config.json` and the weights of a `.keras` file (a zip; Keras stores its members
/// uncompressed, other tools may deflate them).
pub fn read_keras(path: &Path) -> Result<(String, TensorMap)> {
    let source = path.display().to_string();
    let zerr = |e: zip::result::ZipError| {
        LstmError::format(&source, format!("not a readable .keras (zip) file: {e}"))
    };
    let file = std::fs::File::open(path).map_err(|e| LstmError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(zerr)?;
    let config = {
        let member = zip.by_name("config.json").map_err(zerr)?;
        let bytes = read_member(member, &source)?;
        String::from_utf8(bytes)
            .map_err(|_| LstmError::format(&source, "config.json is not UTF-8"))?
    };
    let member = zip.by_name("model.weights.h5").map_err(zerr)?;
    let bytes = read_member(member, &source)?;
    // The HDF5 library reads files, not memory: the weights go through a temporary file.
    let tmp = TempFile::create(&bytes)?;
    let map = read_weights(&tmp.0).map_err(|e| match e {
        LstmError::Format { reason, .. } => {
            LstmError::format(format!("{source}: model.weights.h5"), reason)
        }
        other => other,
    })?;
    Ok((config, map))
}

/// A member's bytes, refusing a size far beyond its compressed size (a zip bomb; the
/// same guard as Keras's loader) and a member that holds more than it declares.
fn read_member(member: zip::read::ZipFile<'_, std::fs::File>, source: &str) -> Result<Vec<u8>> {
    const FLOOR: u64 = 1 << 28;
    let (name, size) = (member.name().to_string(), member.size());
    if size > FLOOR && size > 100 * member.compressed_size() {
        return Err(LstmError::format(
            source,
            format!("{name} expands to {size} bytes: refused as a zip bomb"),
        ));
    }
    let mut bytes = Vec::new();
    member
        .take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| LstmError::format(source, format!("{name}: {e}")))?;
    if bytes.len() as u64 != size {
        return Err(LstmError::format(
            source,
            format!(
                "{name}: holds {} bytes, its header says {size}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn create(bytes: &[u8]) -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        // The clock too: a file left by an earlier process with the same id is skipped.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "lstm-wgpu-{}-{n}-{nanos}.weights.h5",
            std::process::id()
        ));
        // create_new: never write through a file (or link) someone else put there.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LstmError::io(&path, e))?;
        let tmp = TempFile(path);
        f.write_all(bytes).map_err(|e| LstmError::io(&tmp.0, e))?;
        Ok(tmp)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

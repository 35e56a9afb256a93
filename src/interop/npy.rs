//! NumPy `.npy` files: arrays for the `forward` command and framework weights saved
//! one tensor per file. This is the bottom layer of the file readers: it knows
//! nothing of tensor maps or frameworks (`tensors.rs` builds on it).
//!
//! Files are parsed as views over an in-memory copy, so a corrupt header that claims
//! a huge shape is an error (missing bytes), never a huge allocation.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, Dimension};
use ndarray_npy::{ViewElement, ViewNpyError, ViewNpyExt, WritableElement, WriteNpyExt};

use crate::error::{LstmError, Result};

/// The file's bytes, 8-byte aligned so that f64/i64 data can be viewed in place
/// (the `.npy` header is padded so that the data starts on a 16- or 64-byte boundary).
struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// Reads the whole file into the aligned buffer. A file too large for memory is an
    /// error, not an abort on a failed allocation.
    fn read(path: &Path) -> Result<Self> {
        use std::io::Read;
        let io_err = |e| LstmError::io(path, e);
        let mut file = std::fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            // A pipe or device: its length is not known up front.
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_err)?;
            let mut buf = Self::zeroed(path, bytes.len())?;
            buf.bytes_mut().copy_from_slice(&bytes);
            return Ok(buf);
        }
        let len = usize::try_from(meta.len()).map_err(|_| Self::too_large(path, meta.len()))?;
        let mut buf = Self::zeroed(path, len)?;
        file.read_exact(buf.bytes_mut()).map_err(io_err)?;
        Ok(buf)
    }

    /// `len` zero bytes, or an error when they cannot be allocated.
    fn zeroed(path: &Path, len: usize) -> Result<Self> {
        let mut words = Vec::new();
        words
            .try_reserve_exact(len.div_ceil(8))
            .map_err(|_| Self::too_large(path, len as u64))?;
        words.resize(len.div_ceil(8), 0u64);
        Ok(Aligned { words, len })
    }

    fn too_large(path: &Path, len: u64) -> LstmError {
        LstmError::format(
            path.display().to_string(),
            format!("the file's {len} bytes cannot be held in memory"),
        )
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)[..self.len]
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

/// The element types this crate reads, each converted on load.
enum Loaded {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

/// `Ok(None)` when the file holds another dtype, so the caller can try the next one.
fn try_view<T: ViewElement + Clone>(path: &Path, bytes: &[u8]) -> Result<Option<ArrayD<T>>> {
    match ArrayViewD::<T>::view_npy(bytes) {
        Ok(v) => Ok(Some(v.as_standard_layout().into_owned())),
        Err(ViewNpyError::WrongDescriptor(_)) => Ok(None),
        Err(ViewNpyError::NonNativeEndian) => Err(LstmError::format(
            path.display().to_string(),
            "big-endian data is not supported: save it little-endian (numpy's default)",
        )),
        Err(e) => Err(LstmError::Npy {
            path: path.display().to_string(),
            what: "not a valid .npy file",
            source: Box::new(e),
        }),
    }
}

/// The header length a `.npy` file declares (a u16 in version 1, a u32 in 2 and 3) must
/// fit the file: ndarray-npy allocates it before reading, so a 100-byte file claiming a
/// 4 GiB header would otherwise allocate 4 GiB (found by fuzzing, see FUZZING.md).
fn check_header_len(path: &Path, b: &[u8]) -> Result<()> {
    let (len_bytes, declared) = match (b.get(6), b.get(8..12)) {
        (Some(1), Some(l)) => (2, u64::from(u16::from_le_bytes([l[0], l[1]]))),
        (Some(2 | 3), Some(l)) => (4, u64::from(u32::from_le_bytes([l[0], l[1], l[2], l[3]]))),
        _ => return Ok(()), // too short or an unknown version: ndarray-npy says which
    };
    let available = (b.len() as u64).saturating_sub(8 + len_bytes);
    if declared > available {
        return Err(LstmError::format(
            path.display().to_string(),
            format!("the header claims {declared} bytes, but only {available} follow: truncated or corrupt"),
        ));
    }
    let start = 8 + len_bytes as usize;
    check_header_nesting(path, &b[start..start + declared as usize])
}

/// Deepest bracket nesting a header may have: the dict, the shape tuple, and one more
/// level (a structured dtype's field list, which ndarray-npy then rejects by name).
const MAX_HEADER_NESTING: usize = 3;

/// A `.npy` header is a flat Python dict literal. ndarray-npy parses it with a
/// backtracking parser whose time grows exponentially with bracket nesting: a 140-byte
/// header nested 14 levels deep took 73 ms, and each level more doubles it (found by
/// fuzzing). Deeper nesting than any valid header has is refused before parsing.
fn check_header_nesting(path: &Path, header: &[u8]) -> Result<()> {
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    for &c in header {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'{' | b'(' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b'}' | b')' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_HEADER_NESTING {
        return Err(LstmError::format(
            path.display().to_string(),
            format!(
                "the header nests brackets {deepest} levels deep; a .npy header is a flat dict \
                 (at most {MAX_HEADER_NESTING} levels)"
            ),
        ));
    }
    Ok(())
}

fn load(path: &Path, accepted: &str) -> Result<Loaded> {
    let buf = Aligned::read(path)?;
    let b = buf.bytes();
    if !b.starts_with(b"\x93NUMPY") {
        return Err(LstmError::format(
            path.display().to_string(),
            "not a .npy file (it does not start with \\x93NUMPY)",
        ));
    }
    check_header_len(path, b)?;
    if let Some(a) = try_view::<f32>(path, b)? {
        return Ok(Loaded::F32(a));
    }
    if let Some(a) = try_view::<f64>(path, b)? {
        return Ok(Loaded::F64(a));
    }
    if let Some(a) = try_view::<i32>(path, b)? {
        return Ok(Loaded::I32(a));
    }
    if let Some(a) = try_view::<i64>(path, b)? {
        return Ok(Loaded::I64(a));
    }
    // Every view above failed on the descriptor alone, so the header parsed: name its dtype.
    let descr = match ArrayViewD::<u8>::view_npy(b) {
        Err(ViewNpyError::WrongDescriptor(d)) => d.to_string(),
        _ => "uint8".to_string(),
    };
    Err(LstmError::format(
        path.display().to_string(),
        format!("dtype {descr} is not supported: expected {accepted}"),
    ))
}

/// A float32 or float64 array (float64 is rounded to f32), in standard layout.
pub fn read_f32(path: &Path) -> Result<ArrayD<f32>> {
    const ACCEPTED: &str = "float32 or float64";
    match load(path, ACCEPTED)? {
        Loaded::F32(a) => Ok(a),
        Loaded::F64(a) => Ok(a.mapv(|v| v as f32)),
        Loaded::I32(_) | Loaded::I64(_) => Err(LstmError::format(
            path.display().to_string(),
            format!("dtype is an integer type: expected {ACCEPTED}"),
        )),
    }
}

/// An int32 or int64 array as int64 (an integer input of an ONNX graph).
pub fn read_i64(path: &Path) -> Result<ArrayD<i64>> {
    const ACCEPTED: &str = "int32 or int64";
    match load(path, ACCEPTED)? {
        Loaded::I32(a) => Ok(a.mapv(i64::from)),
        Loaded::I64(a) => Ok(a),
        Loaded::F32(_) | Loaded::F64(_) => Err(LstmError::format(
            path.display().to_string(),
            format!("dtype is a float type: expected {ACCEPTED}"),
        )),
    }
}

/// Sequence lengths: a 1-D int32 or int64 array of non-negative values.
pub fn read_lengths(path: &Path) -> Result<Vec<usize>> {
    const ACCEPTED: &str = "int32 or int64";
    let what = path.display().to_string();
    let a: ArrayD<i64> = match load(path, ACCEPTED)? {
        Loaded::I32(a) => a.mapv(i64::from),
        Loaded::I64(a) => a,
        Loaded::F32(_) | Loaded::F64(_) => {
            return Err(LstmError::format(
                what,
                format!("dtype is a float type: expected {ACCEPTED}"),
            ))
        }
    };
    if a.ndim() != 1 {
        return Err(LstmError::shape(what, "[B]", format!("{:?}", a.shape())));
    }
    a.iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v)
                .map_err(|_| LstmError::value(format!("{what}[{i}]"), format!("{v} is negative")))
        })
        .collect()
}

/// Any of the dtypes this crate reads (float32, float64, int32, int64) as f32.
pub fn read_any_f32(path: &Path) -> Result<ArrayD<f32>> {
    Ok(match load(path, "float32, float64, int32 or int64")? {
        Loaded::F32(a) => a,
        Loaded::F64(a) => a.mapv(|v| v as f32),
        Loaded::I32(a) => a.mapv(|v| v as f32),
        Loaded::I64(a) => a.mapv(|v| v as f32),
    })
}

/// Every `*.npy` file in `dir` as an f32 array named after the file's stem
/// (`W.npy` → `W`); integer files are converted too ([`read_any_f32`]).
/// Errors when the directory holds no `.npy` file.
pub fn read_dir(dir: &Path) -> Result<HashMap<String, ArrayD<f32>>> {
    let mut arrays = HashMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LstmError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| LstmError::io(dir, e))?.path();
        let stem = path.file_stem().and_then(|s| s.to_str());
        let (Some(stem), Some("npy")) = (stem, path.extension().and_then(|e| e.to_str())) else {
            continue;
        };
        arrays.insert(stem.to_string(), read_any_f32(&path)?);
    }
    if arrays.is_empty() {
        return Err(LstmError::format(
            dir.display().to_string(),
            "no .npy files in this directory",
        ));
    }
    Ok(arrays)
}

/// Writes an array as `.npy` (little-endian, C order).
pub fn write<T: WritableElement, D: Dimension>(
    path: &Path,
    a: &ndarray::Array<T, D>,
) -> Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path).map_err(|e| LstmError::io(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    a.write_npy(&mut w).map_err(|e| LstmError::Npy {
        path: path.display().to_string(),
        what: "could not write .npy file",
        source: Box::new(e),
    })?;
    // Flush here: a BufWriter dropped with unwritten data loses the error.
    w.flush().map_err(|e| LstmError::io(path, e))
}

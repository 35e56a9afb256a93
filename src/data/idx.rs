//! IDX files, the format MNIST ships in, plain or gzip-compressed (MNIST itself, on
//! top of this, is in [`super::mnist`]).
//!
//! An IDX file is a 4-byte magic `00 00 <dtype> <ndim>`, then `ndim` big-endian `u32`
//! dimensions, then the elements in row-major order. MNIST images are
//! `00 00 08 03` (u8, `[N, 28, 28]`), labels `00 00 08 01` (u8, `[N]`).
//!
//! Gzip is detected from the content (`1f 8b`), not the file name, so `x.gz`, `x` and a
//! gunzipped file that kept its `.gz` name all read the same. Decompression needs the
//! `gzip` feature (on by default); without it a gzip file is a clear
//! [`LstmError::Format`] that says so. Every size in the header
//! is checked against the bytes actually there before anything of that size is
//! allocated: a corrupt or hostile header gives an [`LstmError::Format`], never a huge
//! allocation or a panic.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use crate::error::{LstmError, Result};

/// IDX element type code for unsigned bytes, the only one [`read_idx_u8`] accepts.
pub const IDX_DTYPE_U8: u8 = 0x08;

/// Gzip streams start with these two bytes; a plain IDX file starts with `00 00`.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// DEFLATE cannot expand data by more than about 1032:1. Used only to cap how much is
/// reserved up front for a gzip file's contents; the buffer still grows to the real size.
#[cfg(feature = "gzip")]
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The contents of a u8 IDX file: its dimensions and its elements in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxU8 {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl IdxU8 {
    /// The file's magic number, `0x0000_08nn` with `nn` the number of dimensions.
    pub fn magic(&self) -> u32 {
        (u32::from(IDX_DTYPE_U8) << 8) | self.dims.len() as u32
    }
}

/// Reads a u8 IDX file, plain or gzip-compressed (detected from its first bytes).
///
/// Errors: [`LstmError::Io`] when the file cannot be opened or read;
/// [`LstmError::Format`] for a wrong magic, an element type other than u8, dimensions
/// whose product overflows, data shorter or longer than the dimensions say, a corrupt
/// or truncated gzip stream, or a gzip file when the crate was built without its
/// `gzip` feature.
pub fn read_idx_u8(path: impl AsRef<Path>) -> Result<IdxU8> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let io_err = |e| LstmError::io(path, e);
    let mut file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();

    let mut head = Vec::with_capacity(2);
    (&mut file).take(2).read_to_end(&mut head).map_err(io_err)?;
    let gzip = head == GZIP_MAGIC;
    let stream = Cursor::new(head).chain(BufReader::new(file));
    if gzip {
        read_gzip(stream, path, file_len)
    } else {
        read_idx(stream, &what, Some(file_len), file_len, io_err)
    }
}

/// Decompresses and parses a gzip IDX stream of a `file_len`-byte file.
#[cfg(feature = "gzip")]
fn read_gzip(stream: impl Read, path: &Path, file_len: u64) -> Result<IdxU8> {
    let gz = flate2::read::MultiGzDecoder::new(stream);
    let reserve_cap = file_len.saturating_mul(MAX_DEFLATE_RATIO);
    read_idx(gz, &path.display().to_string(), None, reserve_cap, |e| {
        gzip_error(path, e)
    })
}

/// Without the `gzip` feature there is no decoder: say so, and how to go on.
#[cfg(not(feature = "gzip"))]
fn read_gzip(_stream: impl Read, path: &Path, _file_len: u64) -> Result<IdxU8> {
    Err(LstmError::format(
        path.display().to_string(),
        "the file is gzip-compressed, but lstm-wgpu was built without the `gzip` feature: \
         gunzip it first, or build with `--features gzip`",
    ))
}

/// Maps an error from the gzip decoder: bad data is a format error, anything else
/// (the disk) stays an I/O error.
#[cfg(feature = "gzip")]
fn gzip_error(path: &Path, e: io::Error) -> LstmError {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            LstmError::format(
                path.display().to_string(),
                format!("gzip stream is corrupt or truncated: {e}"),
            )
        }
        _ => LstmError::io(path, e),
    }
}

/// Reads as many bytes as are there, up to `buf.len()`; returns how many.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn dtype_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => return None,
    })
}

/// What the header says: the dimensions, the header's length in bytes and the number
/// of data bytes the dimensions need.
struct Header {
    dims: Vec<usize>,
    len: u64,
    data_len: usize,
}

/// Parses an IDX stream. `plain_len` is the stream's total length when it is known
/// up front (an uncompressed file), so the data length is checked before allocating;
/// otherwise (gzip) the data is read in growing steps bounded by what is really there,
/// with at most `reserve_cap` bytes reserved up front.
fn read_idx(
    mut r: impl Read,
    what: &str,
    plain_len: Option<u64>,
    reserve_cap: u64,
    err: impl Fn(io::Error) -> LstmError,
) -> Result<IdxU8> {
    let bad = |reason: String| LstmError::format(what, reason);
    let header = read_header(&mut r, what, &err)?;
    let expected = header.data_len as u64;
    let gzip = plain_len.is_none();
    let data = match plain_len {
        Some(total) => read_plain_data(&mut r, &header, total, &bad, &err)?,
        None => read_stream_data(&mut r, &header, reserve_cap, &bad, &err)?,
    };
    // Reading to the end also makes the gzip decoder check its CRC and length trailer.
    let extra = io::copy(&mut r, &mut io::sink()).map_err(&err)?;
    if extra > 0 {
        let present = expected.saturating_add(extra);
        return Err(bad(size_mismatch(&header.dims, expected, present, gzip)));
    }
    Ok(IdxU8 {
        dims: header.dims,
        data,
    })
}

/// The magic number and the dimensions, checked: u8 elements, at least one dimension,
/// and a data size that fits in memory's address range and in a file.
fn read_header(
    r: &mut impl Read,
    what: &str,
    err: &impl Fn(io::Error) -> LstmError,
) -> Result<Header> {
    let bad = |reason: String| LstmError::format(what, reason);
    let mut magic = [0u8; 4];
    let n = read_up_to(r, &mut magic).map_err(err)?;
    if n < 4 {
        return Err(bad(format!(
            "truncated: {n} bytes, shorter than the 4-byte IDX magic number"
        )));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: starts with {:02x} {:02x} {:02x} {:02x}, expected 00 00 <dtype> <ndim>",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    let dtype = magic[2];
    if dtype != IDX_DTYPE_U8 {
        return Err(bad(match dtype_name(dtype) {
            Some(name) => format!(
                "unsupported IDX element type 0x{dtype:02x} ({name}): only u8 (0x08) is read"
            ),
            None => format!(
                "unknown IDX element type 0x{dtype:02x} (magic 0x{:08x})",
                u32::from_be_bytes(magic)
            ),
        }));
    }
    let ndim = usize::from(magic[3]);
    if ndim == 0 {
        return Err(bad("IDX header has 0 dimensions".into()));
    }

    let mut dim_bytes = vec![0u8; 4 * ndim];
    let n = read_up_to(r, &mut dim_bytes).map_err(err)?;
    if n < dim_bytes.len() {
        return Err(bad(format!(
            "truncated header: {ndim} dimensions need {} bytes after the magic number, only {n} are there",
            dim_bytes.len()
        )));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let len = 4 + 4 * ndim as u64;
    let data_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&e| u64::try_from(e).is_ok_and(|e| e.checked_add(len).is_some()))
        .ok_or_else(|| {
            bad(format!(
                "dimensions {dims:?} overflow: their product is larger than any file can be"
            ))
        })?;
    Ok(Header {
        dims,
        len,
        data_len,
    })
}

/// The data of an uncompressed file of `total` bytes: its size is checked against the
/// header before anything is allocated, and the allocation itself may fail with an
/// error (a sparse file can be far larger than memory) instead of aborting.
fn read_plain_data(
    r: &mut impl Read,
    header: &Header,
    total: u64,
    bad: &impl Fn(String) -> LstmError,
    err: &impl Fn(io::Error) -> LstmError,
) -> Result<Vec<u8>> {
    let (dims, expected) = (&header.dims, header.data_len);
    let present = total.saturating_sub(header.len);
    if present != expected as u64 {
        return Err(bad(size_mismatch(dims, expected as u64, present, false)));
    }
    let mut data = Vec::new();
    data.try_reserve_exact(expected).map_err(|e| {
        bad(format!(
            "cannot reserve memory for the {expected} data bytes: {e}"
        ))
    })?;
    data.resize(expected, 0);
    let n = read_up_to(r, &mut data).map_err(err)?;
    if n < expected {
        // The file shrank between the size check and the read.
        return Err(bad(size_mismatch(dims, expected as u64, n as u64, false)));
    }
    Ok(data)
}

/// The data of a stream of unknown length (gzip): read in growing steps bounded by
/// what is really there, with at most `reserve_cap` bytes reserved up front.
fn read_stream_data(
    r: &mut impl Read,
    header: &Header,
    reserve_cap: u64,
    bad: &impl Fn(String) -> LstmError,
    err: &impl Fn(io::Error) -> LstmError,
) -> Result<Vec<u8>> {
    let expected = header.data_len as u64;
    let mut data = Vec::new();
    data.try_reserve_exact(expected.min(reserve_cap) as usize)
        .map_err(|e| bad(format!("cannot reserve memory for the data: {e}")))?;
    r.take(expected).read_to_end(&mut data).map_err(err)?;
    if (data.len() as u64) < expected {
        return Err(bad(size_mismatch(
            &header.dims,
            expected,
            data.len() as u64,
            true,
        )));
    }
    Ok(data)
}

fn size_mismatch(dims: &[usize], expected: u64, present: u64, gzip: bool) -> String {
    let kind = if present < expected {
        format!("truncated: {} bytes missing", expected - present)
    } else {
        format!("{} trailing bytes", present - expected)
    };
    let holder = if gzip {
        "the decompressed stream has"
    } else {
        "the file has"
    };
    format!("{kind}: dimensions {dims:?} need {expected} data bytes, {holder} {present}")
}

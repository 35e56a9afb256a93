//! IDX files, the format MNIST ships in, plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic `00 00 <dtype> <ndim>`, then `ndim` big-endian `u32`
//! dimensions, then the elements in row-major order. MNIST images are
//! `00 00 08 03` (u8, `[N, 28, 28]`), labels `00 00 08 01` (u8, `[N]`).
//!
//! Gzip is detected from the content (`1f 8b`), not the file name, so `x.gz`, `x` and a
//! gunzipped file that kept its `.gz` name all read the same. Every size in the header
//! is checked against the bytes actually there before anything of that size is
//! allocated: a corrupt or hostile header gives an [`LstmError::Format`], never a huge
//! allocation or a panic.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use ndarray::{s, Array3};

use crate::error::{LstmError, Result};

/// IDX element type code for unsigned bytes, the only one [`read_idx_u8`] accepts.
pub const IDX_DTYPE_U8: u8 = 0x08;
/// Magic number of an MNIST image file: u8, 3 dimensions `[N, 28, 28]`.
pub const MNIST_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an MNIST label file: u8, 1 dimension `[N]`.
pub const MNIST_LABELS_MAGIC: u32 = 0x0000_0801;
/// Height and width of an MNIST digit.
pub const MNIST_SIDE: usize = 28;
/// File names of the bundled subset inside [`bundled_mnist_dir`].
pub const BUNDLED_IMAGES_FILE: &str = "images-idx3-ubyte.gz";
pub const BUNDLED_LABELS_FILE: &str = "labels-idx1-ubyte.gz";
/// The bundled subset's split: the first 8,000 digits train, the last 2,000 test.
pub const BUNDLED_TRAIN_LEN: usize = 8_000;

/// Gzip streams start with these two bytes; a plain IDX file starts with `00 00`.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// DEFLATE cannot expand data by more than about 1032:1. Used only to cap how much is
/// reserved up front for a gzip file's contents; the buffer still grows to the real size.
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
/// whose product overflows, data shorter or longer than the dimensions say, or a
/// corrupt or truncated gzip stream.
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
        let gz = MultiGzDecoder::new(stream);
        let reserve_cap = file_len.saturating_mul(MAX_DEFLATE_RATIO);
        read_idx(gz, &what, None, reserve_cap, |e| gzip_error(path, e))
    } else {
        read_idx(stream, &what, Some(file_len), file_len, io_err)
    }
}

/// Maps an error from the gzip decoder: bad data is a format error, anything else
/// (the disk) stays an I/O error.
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

    let mut magic = [0u8; 4];
    let n = read_up_to(&mut r, &mut magic).map_err(&err)?;
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
    let n = read_up_to(&mut r, &mut dim_bytes).map_err(&err)?;
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
    let header_len = 4 + 4 * ndim as u64;
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&e| u64::try_from(e).is_ok_and(|e| e.checked_add(header_len).is_some()))
        .ok_or_else(|| {
            bad(format!(
                "dimensions {dims:?} overflow: their product is larger than any file can be"
            ))
        })?;
    let expected_u64 = expected as u64;

    let gzip = plain_len.is_none();
    let data = if let Some(total) = plain_len {
        let present = total.saturating_sub(header_len);
        if present != expected_u64 {
            return Err(bad(size_mismatch(&dims, expected_u64, present, gzip)));
        }
        let mut data = vec![0u8; expected];
        let n = read_up_to(&mut r, &mut data).map_err(&err)?;
        if n < expected {
            // The file shrank between the size check and the read.
            return Err(bad(size_mismatch(&dims, expected_u64, n as u64, gzip)));
        }
        data
    } else {
        let mut data = Vec::new();
        data.try_reserve_exact(expected_u64.min(reserve_cap) as usize)
            .map_err(|e| bad(format!("cannot reserve memory for the data: {e}")))?;
        (&mut r)
            .take(expected_u64)
            .read_to_end(&mut data)
            .map_err(&err)?;
        if data.len() < expected {
            return Err(bad(size_mismatch(
                &dims,
                expected_u64,
                data.len() as u64,
                gzip,
            )));
        }
        data
    };
    // Reading to the end also makes the gzip decoder check its CRC and length trailer.
    let extra = io::copy(&mut r, &mut io::sink()).map_err(&err)?;
    if extra > 0 {
        let present = expected_u64.saturating_add(extra);
        return Err(bad(size_mismatch(&dims, expected_u64, present, gzip)));
    }
    Ok(IdxU8 { dims, data })
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

/// MNIST digits: images scaled from u8 to `[0, 1]`, and their labels 0–9.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// `[N, 28, 28]`: image, row, column; each value `pixel / 255`.
    pub images: Array3<f32>,
    /// `N` labels, each 0–9.
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Checks and converts an image file's and a label file's contents.
    pub fn from_idx(images: IdxU8, labels: IdxU8) -> Result<Self> {
        Self::build(images, "MNIST images", labels, "MNIST labels")
    }

    fn build(images: IdxU8, images_what: &str, labels: IdxU8, labels_what: &str) -> Result<Self> {
        if images.dims.len() != 3 {
            return Err(LstmError::format(
                images_what,
                format!(
                    "expected an MNIST image file (magic 0x{MNIST_IMAGES_MAGIC:08x}: u8, [N, 28, 28]), \
                     got magic 0x{:08x} with dimensions {:?}",
                    images.magic(),
                    images.dims
                ),
            ));
        }
        if images.dims[1..] != [MNIST_SIDE, MNIST_SIDE] {
            return Err(LstmError::format(
                images_what,
                format!(
                    "MNIST images must be 28×28, got {}×{} (dimensions {:?})",
                    images.dims[1], images.dims[2], images.dims
                ),
            ));
        }
        if labels.dims.len() != 1 {
            return Err(LstmError::format(
                labels_what,
                format!(
                    "expected an MNIST label file (magic 0x{MNIST_LABELS_MAGIC:08x}: u8, [N]), \
                     got magic 0x{:08x} with dimensions {:?}",
                    labels.magic(),
                    labels.dims
                ),
            ));
        }
        for (what, idx) in [(images_what, &images), (labels_what, &labels)] {
            let len = idx.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if len != Some(idx.data.len()) {
                return Err(LstmError::format(
                    what,
                    format!(
                        "dimensions {:?} do not match the {} data bytes",
                        idx.dims,
                        idx.data.len()
                    ),
                ));
            }
        }
        let n = images.dims[0];
        if labels.dims[0] != n {
            return Err(LstmError::format(
                format!("{images_what} / {labels_what}"),
                format!("{n} images but {} labels", labels.dims[0]),
            ));
        }
        if let Some((i, &l)) = labels.data.iter().enumerate().find(|(_, &l)| l > 9) {
            return Err(LstmError::format(
                labels_what,
                format!("label {l} at index {i} is not a digit 0–9"),
            ));
        }
        let pixels = images.data.iter().map(|&v| f32::from(v) / 255.0).collect();
        let images = Array3::from_shape_vec((n, MNIST_SIDE, MNIST_SIDE), pixels)
            .map_err(|e| LstmError::format(images_what, e.to_string()))?;
        Ok(Mnist {
            images,
            labels: labels.data,
        })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many digits of each class 0–9 (labels above 9, which the loaders never
    /// produce, are not counted).
    pub fn class_counts(&self) -> [usize; 10] {
        let mut counts = [0; 10];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// The first `n_first` digits and the rest, in order. For the bundled subset,
    /// `split(BUNDLED_TRAIN_LEN)` gives (train, test). Errors when `n_first > len()`.
    pub fn split(self, n_first: usize) -> Result<(Mnist, Mnist)> {
        if self.images.dim().0 != self.labels.len() {
            return Err(LstmError::shape(
                "MNIST images",
                format!("[{}, 28, 28] (one per label)", self.labels.len()),
                format!("{:?}", self.images.shape()),
            ));
        }
        if n_first > self.len() {
            return Err(LstmError::value(
                "MNIST split point",
                format!("{n_first} is more than the {} digits there are", self.len()),
            ));
        }
        let mut labels = self.labels;
        let rest_labels = labels.split_off(n_first);
        let first = Mnist {
            images: self.images.slice(s![..n_first, .., ..]).to_owned(),
            labels,
        };
        let rest = Mnist {
            images: self.images.slice(s![n_first.., .., ..]).to_owned(),
            labels: rest_labels,
        };
        Ok((first, rest))
    }
}

/// Reads an MNIST image file and label file (IDX, plain or gzip), e.g. the original
/// `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz`.
///
/// Beyond [`read_idx_u8`]'s checks: the image file must be `[N, 28, 28]`, the label
/// file `[N]` with the same `N`, and every label 0–9.
pub fn load_mnist(images_path: impl AsRef<Path>, labels_path: impl AsRef<Path>) -> Result<Mnist> {
    let (images_path, labels_path) = (images_path.as_ref(), labels_path.as_ref());
    let images = read_idx_u8(images_path)?;
    let labels = read_idx_u8(labels_path)?;
    Mnist::build(
        images,
        &images_path.display().to_string(),
        labels,
        &labels_path.display().to_string(),
    )
}

/// The folder of the 10,000 bundled digits (`data/mnist10k` in the crate's source).
pub fn bundled_mnist_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist10k"))
}

/// Loads the 10,000 bundled digits; `.split(BUNDLED_TRAIN_LEN)` gives (train, test).
pub fn load_bundled_mnist() -> Result<Mnist> {
    let dir = bundled_mnist_dir();
    load_mnist(dir.join(BUNDLED_IMAGES_FILE), dir.join(BUNDLED_LABELS_FILE))
}

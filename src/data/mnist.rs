//! MNIST digits from IDX files ([`super::idx`]): the original downloads or the
//! 10,000-digit subset bundled with the crate (`data/mnist10k`).

use std::path::{Path, PathBuf};

use ndarray::{s, Array3};

use super::idx::{read_idx_u8, IdxU8};
use crate::error::{LstmError, Result};

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

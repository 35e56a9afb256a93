//! Data sets: the IDX file format (MNIST) and the bundled 10,000-digit MNIST subset.

pub mod idx;
pub mod mnist;

pub use idx::{read_idx_u8, IdxU8};
pub use mnist::{bundled_mnist_dir, load_bundled_mnist, load_mnist, Mnist, BUNDLED_TRAIN_LEN};

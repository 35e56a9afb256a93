//! Data sets: the IDX file format (MNIST) and the bundled 10,000-digit MNIST subset.

pub mod idx;

pub use idx::{
    bundled_mnist_dir, load_bundled_mnist, load_mnist, read_idx_u8, IdxU8, Mnist, BUNDLED_TRAIN_LEN,
};

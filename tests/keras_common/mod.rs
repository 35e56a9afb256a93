//! The Keras model fixtures (tests/fixtures/keras/, from scripts/make_keras_fixtures.py)
//! shared by tests/keras_model.rs and tests/keras_model_errors.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lstm_wgpu::interop::npy;
use ndarray::ArrayD;

/// CPU vs Keras (torch backend, float32): the same f32 arithmetic in another order.
pub const KERAS_CPU_ATOL: f32 = 1e-5;
/// GPU vs Keras: the GPU's own summation order and transcendental functions on top.
pub const KERAS_GPU_ATOL: f32 = 1e-4;

/// Each fixture and the state files its model returns (in Keras's order).
pub const CASES: [(&str, &[&str]); 5] = [
    ("lstm_dense", &[]),
    ("bilstm_gru", &[]),
    ("gru_state", &["h_n"]),
    (
        "bilstm_state",
        &["forward_h_n", "forward_c_n", "backward_h_n", "backward_c_n"],
    ),
    ("bigru_dense_seq", &[]),
];

pub fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(case)
}

pub fn read(path: &Path) -> ArrayD<f32> {
    npy::read_f32(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh empty directory of this test process.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-wgpu-keras-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

//! Helpers shared by the interop tests: the framework fixture cases
//! (`scripts/make_interop_fixtures.py`, files in tests/fixtures/interop), loading them,
//! comparing outputs, and small helpers for the error tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::*;
use lstm_wgpu::interop::format::{self, Format};
use lstm_wgpu::interop::{keras, npy, onnx, torch};
use lstm_wgpu::{LstmError, LstmOutput, LstmState, LstmWeights, Peephole};
use ndarray::{Array3, ArrayD, Axis, Ix3, IxDyn};

/// One fixture directory and what the framework was built with.
pub struct Case {
    pub name: &'static str,
    pub format: Format,
    /// Name prefix of the LSTM's tensors in the weight file.
    pub prefix: &'static str,
    /// `x` and `y` are `[B, T, ·]` (Keras always; one PyTorch case).
    pub batch_first: bool,
    pub layers: usize,
    pub bidirectional: bool,
    pub peephole: Peephole,
}

pub const fn case(
    name: &'static str,
    format: Format,
    prefix: &'static str,
    batch_first: bool,
    layers: usize,
    bidirectional: bool,
    peephole: Peephole,
) -> Case {
    Case {
        name,
        format,
        prefix,
        batch_first,
        layers,
        bidirectional,
        peephole,
    }
}

pub const CASES: [Case; 8] = [
    case(
        "torch_one_layer_init",
        Format::Torch,
        "",
        false,
        1,
        false,
        Peephole::None,
    ),
    case(
        "torch_two_layer_bidir",
        Format::Torch,
        "lstm.",
        true,
        2,
        true,
        Peephole::None,
    ),
    case(
        "torch_var_lengths",
        Format::Torch,
        "",
        false,
        2,
        true,
        Peephole::None,
    ),
    case(
        "keras_seq_state",
        Format::Keras,
        "",
        true,
        1,
        false,
        Peephole::None,
    ),
    case(
        "keras_bidir",
        Format::Keras,
        "bi_lstm.",
        true,
        1,
        true,
        Peephole::None,
    ),
    case(
        "onnx_peephole_lens",
        Format::Onnx,
        "",
        false,
        1,
        false,
        Peephole::Diagonal,
    ),
    case(
        "onnx_bidir_peephole_lens",
        Format::Onnx,
        "",
        false,
        1,
        true,
        Peephole::Diagonal,
    ),
    case(
        "onnx_bidir_no_bias",
        Format::Onnx,
        "",
        false,
        1,
        true,
        Peephole::None,
    ),
];

pub fn dir(case: &Case) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interop")
        .join(case.name)
}

/// `weights.safetensors` when the case has one, else the `weights/` directory of .npy files.
pub fn weights_path(case: &Case) -> PathBuf {
    let st = dir(case).join("weights.safetensors");
    if st.exists() {
        st
    } else {
        dir(case).join("weights")
    }
}

pub fn file(case: &Case, name: &str) -> Option<PathBuf> {
    Some(dir(case).join(format!("{name}.npy"))).filter(|p| p.exists())
}

pub fn arr3(path: &Path) -> Array3<f32> {
    let a = npy::read_f32(path).unwrap();
    // Keras's initial states are [B, H]: one layer-direction.
    let a = if a.ndim() == 2 {
        a.insert_axis(Axis(0))
    } else {
        a
    };
    a.into_dimensionality::<Ix3>().unwrap()
}

/// Loads through the format's own importer, and checks auto-detection agrees.
pub fn import(case: &Case) -> LstmWeights {
    let path = weights_path(case);
    let mut w = match case.format {
        Format::Torch => torch::from_tensors(&format::read_tensors(&path).unwrap(), case.prefix),
        Format::Keras => keras::load(&path, case.prefix),
        Format::Onnx => onnx::load(&path, case.prefix),
    }
    .unwrap();
    let (detected, auto) = format::load(&path, None, None).unwrap();
    assert_eq!(
        (detected, &auto),
        (case.format, &w),
        "{}: detection",
        case.name
    );
    let c = &w.config;
    assert_eq!(
        (c.num_layers, c.bidirectional, c.peephole),
        (case.layers, case.bidirectional, case.peephole),
        "{}: inferred config",
        case.name
    );
    w.config.batch_first = case.batch_first;
    w
}

pub struct Expected {
    pub x: Array3<f32>,
    pub initial: Option<LstmState>,
    pub lens: Option<Vec<usize>>,
    pub out: LstmOutput,
}

pub fn expected(case: &Case) -> Expected {
    let f = |n: &str| arr3(&file(case, n).unwrap());
    Expected {
        x: f("x"),
        initial: file(case, "h0").map(|h| LstmState {
            h: arr3(&h),
            c: f("c0"),
        }),
        lens: file(case, "seq_lens").map(|p| npy::read_lengths(&p).unwrap()),
        out: LstmOutput {
            y: f("y"),
            h_n: f("h_n"),
            c_n: f("c_n"),
        },
    }
}

/// Compares all three outputs; returns the largest absolute error.
pub fn check(what: &str, got: &LstmOutput, want: &LstmOutput, atol: f32, rtol: f32) -> f32 {
    assert_close(&format!("{what} y"), &got.y, &want.y, atol, rtol);
    assert_close(&format!("{what} h_n"), &got.h_n, &want.h_n, atol, rtol);
    assert_close(&format!("{what} c_n"), &got.c_n, &want.c_n, atol, rtol);
    [
        max_diff(&got.y, &want.y),
        max_diff(&got.h_n, &want.h_n),
        max_diff(&got.c_n, &want.c_n),
    ]
    .into_iter()
    .fold(0.0, f32::max)
}

/// The error of `r` and its message; panics on success.
pub fn err<T>(r: Result<T, LstmError>) -> (LstmError, String) {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let s = e.to_string();
            (e, s)
        }
    }
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-wgpu-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn tensor(shape: &[usize], seed: u64) -> ArrayD<f32> {
    random(IxDyn(shape), seed)
}

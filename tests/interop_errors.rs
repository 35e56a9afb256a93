//! Bad weight tensors give clear errors: missing, misshaped or inconsistent tensors
//! of each framework, sizes that would overflow, and format detection that finds
//! none or too many. Bad `.npy` files are in tests/npy_errors.rs, bad `forward`
//! arguments in tests/forward_errors.rs.

mod common;
mod interop_common;

use interop_common::*;
use lstm_wgpu::interop::format::{self, Format};
use lstm_wgpu::interop::{keras, onnx, tensors::TensorMap, torch};
use lstm_wgpu::LstmError;
use ndarray::{ArrayD, IxDyn};

/// ONNX tensors of a bidirectional peephole LSTM with I = 3, H = 4.
fn onnx_map() -> TensorMap {
    let mut m = TensorMap::default();
    for (n, s) in [
        ("W", vec![2, 16, 3]),
        ("R", vec![2, 16, 4]),
        ("B", vec![2, 32]),
        ("P", vec![2, 12]),
    ] {
        m.tensors.insert(n.into(), tensor(&s, 1));
    }
    m
}

fn keras_map() -> TensorMap {
    let mut m = TensorMap::default();
    for (n, s) in [
        ("kernel", vec![3, 16]),
        ("recurrent_kernel", vec![4, 16]),
        ("bias", vec![16]),
    ] {
        m.tensors.insert(n.into(), tensor(&s, 2));
    }
    m
}

#[test]
fn missing_misshaped_and_inconsistent_tensors() {
    onnx::from_tensors(&onnx_map(), "").unwrap();
    keras::from_tensors(&keras_map(), "").unwrap();
    // (what is changed, tensor named in the message, expected, found)
    let onnx_cases: Vec<(&str, Option<Vec<usize>>, &str, &str)> = vec![
        ("W", None, "[2, 16, I]", "missing"),
        ("R", None, "[D, 4H, H]", "missing"),
        ("R", Some(vec![3, 16, 4]), "D = 1 or 2", "[3, 16, 4]"),
        ("R", Some(vec![2, 15, 4]), "[D, 4H, H]", "[2, 15, 4]"),
        ("W", Some(vec![1, 16, 3]), "[2, 16, I]", "[1, 16, 3]"), // D differs from R's
        ("B", Some(vec![2, 16]), "[2, 32]", "[2, 16]"),
        ("P", Some(vec![2, 16]), "[2, 12]", "[2, 16]"),
    ];
    for (name, shape, expected, found) in onnx_cases {
        let mut m = onnx_map();
        match &shape {
            Some(s) => m.tensors.insert(name.into(), tensor(s, 3)),
            None => m.tensors.remove(name),
        };
        let (e, s) = err(onnx::from_tensors(&m, ""));
        assert!(matches!(e, LstmError::Shape { .. }), "{e:?}");
        assert!(
            s.contains(&format!("tensor {name}")) && s.contains(expected) && s.contains(found),
            "ONNX {name} {shape:?}: {s}"
        );
    }
    let keras_cases: Vec<(&str, Option<Vec<usize>>, &str, &str)> = vec![
        ("recurrent_kernel", None, "[H, 4H]", "missing"),
        ("kernel", None, "[I, 16]", "missing"),
        ("kernel", Some(vec![3, 12]), "[I, 16]", "[3, 12]"),
        ("recurrent_kernel", Some(vec![16, 4]), "[H, 4H]", "[16, 4]"),
        ("bias", Some(vec![12]), "[16]", "[12]"),
    ];
    for (name, shape, expected, found) in keras_cases {
        let mut m = keras_map();
        match &shape {
            Some(s) => m.tensors.insert(name.into(), tensor(s, 3)),
            None => m.tensors.remove(name),
        };
        let (_, s) = err(keras::from_tensors(&m, ""));
        assert!(
            s.contains(&format!("tensor {name}")) && s.contains(expected) && s.contains(found),
            "Keras {name} {shape:?}: {s}"
        );
    }
    // A bidirectional Keras file missing its backward half.
    let mut m = TensorMap::default();
    for (n, t) in keras_map().tensors {
        m.tensors.insert(format!("forward_{n}"), t);
    }
    let (_, s) = err(keras::from_tensors(&m, ""));
    assert!(
        s.contains("backward_kernel") && s.contains("missing"),
        "{s}"
    );
    // Non-finite weights are refused at import.
    let mut m = onnx_map();
    m.tensors.get_mut("P").unwrap()[[1, 5]] = f32::NAN;
    let (_, s) = err(onnx::from_tensors(&m, ""));
    assert!(s.contains("NaN"), "{s}");
}

#[test]
fn format_detection() {
    let mut both = onnx_map();
    both.tensors.extend(keras_map().tensors);
    let (_, s) = err(format::detect(&both, "w", None, None));
    assert!(s.contains("more than one LSTM"), "{s}");
    assert_eq!(
        format::detect(&both, "w", Some(Format::Keras), None).unwrap(),
        (Format::Keras, String::new())
    );
    let mut other = TensorMap::default();
    other
        .tensors
        .insert("encoder.weight".into(), tensor(&[2, 2], 1));
    let (_, s) = err(format::detect(&other, "model.safetensors", None, None));
    assert!(
        s.contains("model.safetensors")
            && s.contains("no LSTM weights")
            && s.contains("encoder.weight"),
        "{s}"
    );
    // With the format given, the importer names the first missing tensor.
    let (f, p) = format::detect(&other, "m", Some(Format::Onnx), None).unwrap();
    let (_, s) = err(f.from_tensors(&other, &p));
    assert!(s.contains("tensor R") && s.contains("missing"), "{s}");
}

/// A zero-length tensor may claim any other dimension, so a file can claim an H
/// whose 4·H overflows. Each importer calls that a shape error naming the tensor
/// (it was an arithmetic overflow: a panic in debug builds, a wrapped size and a
/// confusing error in release builds). The tensors go through safetensors bytes,
/// as they would come from a file.
#[test]
fn claimed_sizes_that_overflow() {
    let huge = 1usize << 62; // 4 · 2^62 overflows a 64-bit usize
    let through_file = |tensors: &[(&str, Vec<usize>)]| {
        let mut m = TensorMap::default();
        for (n, s) in tensors {
            m.tensors.insert(n.to_string(), ArrayD::zeros(IxDyn(s)));
        }
        TensorMap::from_safetensors_bytes(&m.to_safetensors_bytes().unwrap()).unwrap()
    };
    let torch_map = through_file(&[
        ("weight_ih_l0", vec![0, 3]),
        ("weight_hh_l0", vec![0, huge]),
    ]);
    let keras_map = through_file(&[
        ("kernel", vec![3, 0]),
        ("recurrent_kernel", vec![huge, 0]),
        ("bias", vec![0]),
    ]);
    let onnx_map = through_file(&[("W", vec![1, 0, 3]), ("R", vec![1, 0, huge])]);
    let results = [
        ("torch", torch::from_tensors(&torch_map, ""), "weight_hh_l0"),
        (
            "keras",
            keras::from_tensors(&keras_map, ""),
            "recurrent_kernel",
        ),
        ("onnx", onnx::from_tensors(&onnx_map, ""), "tensor R"),
    ];
    for (what, r, needle) in results {
        let (e, s) = err(r);
        assert!(
            matches!(e, LstmError::Shape { .. }) && s.contains(needle),
            "{what}: {e:?}"
        );
        assert!(s.contains(&huge.to_string()), "{what}: {s}");
    }
}

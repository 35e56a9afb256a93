//! Bad weight files, bad .npy files and bad `forward` arguments give clear errors.

mod common;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lstm_wgpu::interop::format::{self, Format};
use lstm_wgpu::interop::{keras, npy, onnx, tensors::TensorMap};
use lstm_wgpu::LstmError;
use ndarray::{ArrayD, IxDyn};

fn err<T>(r: Result<T, LstmError>) -> (LstmError, String) {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let s = e.to_string();
            (e, s)
        }
    }
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-wgpu-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tensor(shape: &[usize], seed: u64) -> ArrayD<f32> {
    random(IxDyn(shape), seed)
}

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

/// A .npy file written by hand: magic, version 1.0, header padded to 64 bytes, data.
fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_npy_files() {
    let d = scratch("bad-npy");
    let floats: Vec<u8> = [1.5f32, -2.0, 0.25, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    // The hand-made writer is right: a good file reads back.
    let good = write(&d, "good.npy", &npy_bytes("<f4", "(2, 2)", &floats));
    assert_eq!(npy::read_f32(&good).unwrap()[[1, 0]], 0.25);
    // f64 is converted; Fortran order is honoured.
    let f64s: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut fortran = npy_bytes("<f8", "(2, 2)", &f64s);
    let at = fortran.windows(5).position(|w| w == b"False").unwrap();
    fortran.splice(at..at + 5, *b"True ");
    let a = npy::read_f32(&write(&d, "f.npy", &fortran)).unwrap();
    assert_eq!(a[[0, 1]], 3.0);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.npy",
            npy_bytes("<f4", "(2, 2)", &floats[..12]),
            "missing 4 bytes",
        ),
        (
            "extra.npy",
            npy_bytes("<f4", "(2, 2)", &[floats.clone(), vec![0; 4]].concat()),
            "extra bytes",
        ),
        (
            "huge.npy",
            npy_bytes("<f4", "(1099511627776,)", &floats),
            "missing",
        ),
        (
            "bad-header.npy",
            npy_bytes("<f4", "(2, 2", &floats),
            "header",
        ),
    ];
    for (name, bytes, needle) in cases {
        let (e, s) = err(npy::read_f32(&write(&d, name, &bytes)));
        let source = e.source().map(|s| s.to_string()).unwrap_or_default();
        assert!(
            matches!(e, LstmError::Npy { .. }) && s.contains(name) && source.contains(needle),
            "{name}: {s} / {source}"
        );
    }
    let dtype_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "i16.npy",
            npy_bytes("<i2", "(2,)", &[1, 0, 2, 0]),
            "'<i2' is not supported: expected float32 or float64",
        ),
        (
            "i64.npy",
            npy_bytes("<i8", "(1,)", &[1, 0, 0, 0, 0, 0, 0, 0]),
            "integer type",
        ),
        (
            "big.npy",
            npy_bytes(">f4", "(1,)", &[0, 0, 128, 63]),
            "big-endian",
        ),
        (
            "garbage.npy",
            b"PK\x03\x04 a zip".to_vec(),
            "not a .npy file",
        ),
        ("empty.npy", Vec::new(), "not a .npy file"),
    ];
    for (name, bytes, needle) in dtype_cases {
        let (e, s) = err(npy::read_f32(&write(&d, name, &bytes)));
        assert!(
            matches!(e, LstmError::Format { .. }) && s.contains(needle),
            "{name}: {s}"
        );
    }
    let (_, s) = err(npy::read_lengths(&good));
    assert!(s.contains("float type: expected int32 or int64"), "{s}");
    let neg = write(
        &d,
        "neg.npy",
        &npy_bytes("<i4", "(2,)", &[3, 0, 0, 0, 255, 255, 255, 255]),
    );
    let (_, s) = err(npy::read_lengths(&neg));
    assert!(
        s.contains("neg.npy[1]") && s.contains("-1 is negative"),
        "{s}"
    );
    let (e, s) = err(npy::read_f32(&d.join("absent.npy")));
    assert!(
        matches!(e, LstmError::Io { .. }) && s.contains("absent.npy"),
        "{s}"
    );

    // A weight directory with a truncated tensor names that file.
    let wdir = d.join("weights");
    std::fs::create_dir(&wdir).unwrap();
    write(&wdir, "W.npy", &npy_bytes("<f4", "(1, 16, 3)", &floats));
    let (_, s) = err(format::load(&wdir, None, None));
    assert!(s.contains("W.npy"), "{s}");
    let (_, s) = err(format::load(&d.join("empty-dir-absent"), None, None));
    assert!(s.contains("empty-dir-absent"), "{s}");
    let (_, s) = err(format::load(&good, None, None));
    assert!(s.contains("directory of .npy files"), "{s}");
    std::fs::remove_dir_all(&d).ok();
}

/// Runs the binary; returns (success, stderr).
fn lstm_wgpu(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn forward_command_rejects_bad_inputs() {
    let d = scratch("bad-forward");
    let fx =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop/onnx_peephole_lens");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let weights = s(&fx.join("weights"));
    let x = s(&fx.join("x.npy"));
    let out = s(&d.join("out"));
    let mut nan_h0 = npy::read_f32(&fx.join("h0.npy")).unwrap();
    nan_h0[[0, 1, 2]] = f32::NAN;
    let nan_h0_path = d.join("nan_h0.npy");
    npy::write(&nan_h0_path, &nan_h0).unwrap();
    let flat_x = d.join("flat_x.npy");
    npy::write(&flat_x, &tensor(&[6, 4], 1)).unwrap();
    let lens4 = d.join("lens4.npy");
    npy::write(&lens4, &ndarray::arr1(&[1i32, 2, 3, 4])).unwrap();
    let lens_big = d.join("lens_big.npy");
    npy::write(&lens_big, &ndarray::arr1(&[1i64, 7, 3])).unwrap();
    let h0 = s(&fx.join("h0.npy"));
    let c0 = s(&fx.join("c0.npy"));
    let base = [
        "forward",
        "--device",
        "cpu",
        "--weights",
        &weights,
        "--out",
        &out,
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--input".into(), s(&d.join("nope.npy"))], "nope.npy"),
        (
            vec!["--input".into(), s(&flat_x)],
            "[T, B, I] or [B, T, I], got [6, 4]",
        ),
        (
            vec![
                "--input".into(),
                x.clone(),
                "--h0".into(),
                s(&nan_h0_path),
                "--c0".into(),
                c0.clone(),
            ],
            "NaN",
        ),
        (
            vec!["--input".into(), x.clone(), "--seq-lens".into(), s(&lens4)],
            "lens4.npy: expected [3] (one length per sequence of the input), got [4]",
        ),
        (
            vec![
                "--input".into(),
                x.clone(),
                "--seq-lens".into(),
                s(&lens_big),
            ],
            "7 is outside 1..=6",
        ),
        (
            vec![
                "--input".into(),
                x.clone(),
                "--h0".into(),
                x.clone(),
                "--c0".into(),
                c0.clone(),
            ],
            "initial state h_0",
        ),
        (
            vec!["--input".into(), x.clone(), "--h0".into(), h0.clone()],
            "--c0",
        ),
        (
            vec!["--input".into(), x.clone(), "--format".into(), "tf".into()],
            "expected torch, keras or onnx",
        ),
        (
            vec![
                "--input".into(),
                x.clone(),
                "--format".into(),
                "keras".into(),
            ],
            "tensor recurrent_kernel",
        ),
    ];
    for (extra, needle) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter().map(String::as_str));
        let (ok, stderr) = lstm_wgpu(&args);
        assert!(!ok && stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
    }
    // A Keras [B, H] state is only accepted for one unidirectional layer.
    let bi = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interop/onnx_bidir_peephole_lens");
    let bh = d.join("bh.npy");
    npy::write(&bh, &tensor(&[3, 4], 2)).unwrap();
    let (ok, stderr) = lstm_wgpu(&[
        "forward",
        "--device",
        "cpu",
        "--weights",
        &s(&bi.join("weights")),
        "--input",
        &s(&bi.join("x.npy")),
        "--h0",
        &s(&bh),
        "--c0",
        &s(&bh),
        "--out",
        &out,
    ]);
    assert!(
        !ok && stderr.contains("expected [L·D, B, H], got [3, 4]"),
        "{stderr}"
    );
    assert!(!d.join("out").exists(), "no outputs are written on error");
    std::fs::remove_dir_all(&d).ok();
}

//! Bad `.npy` files, read alone or as a weight directory, give clear errors naming the
//! file: corrupt or truncated data, unsupported dtypes, bad sequence lengths, missing
//! files, and sizes that would overflow or not fit in memory.

mod common;
mod interop_common;
mod sparse_file;

use std::error::Error;
use std::path::{Path, PathBuf};

use interop_common::*;
use lstm_wgpu::interop::format;
use lstm_wgpu::interop::npy;
use lstm_wgpu::interop::tensors::TensorMap;
use lstm_wgpu::LstmError;
use sparse_file::huge_sparse_file;

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

/// Four float32 values, as the data of a `(2, 2)` file.
fn floats() -> Vec<u8> {
    [1.5f32, -2.0, 0.25, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// The good float32 `(2, 2)` file.
fn good_file(d: &Path) -> PathBuf {
    write(d, "good.npy", &npy_bytes("<f4", "(2, 2)", &floats()))
}

#[test]
fn hand_made_npy_files_read() {
    let d = scratch("good-npy");
    // The hand-made writer is right: a good file reads back.
    let good = good_file(&d);
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
    std::fs::remove_dir_all(&d).ok();
}

/// Reads each `(file name, bytes, what the error's source says)`: an Npy error
/// naming the file.
fn assert_npy_errors(d: &Path, cases: Vec<(&str, Vec<u8>, &str)>) {
    for (name, bytes, needle) in cases {
        let (e, s) = err(npy::read_f32(&write(d, name, &bytes)));
        let source = e.source().map(|s| s.to_string()).unwrap_or_default();
        assert!(
            matches!(e, LstmError::Npy { .. }) && s.contains(name) && source.contains(needle),
            "{name}: {s} / {source}"
        );
    }
}

#[test]
fn corrupt_npy_files_are_npy_errors() {
    let d = scratch("corrupt-npy");
    let floats = floats();
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
    assert_npy_errors(&d, cases);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn unsupported_npy_files_are_format_errors() {
    let d = scratch("unsupported-npy");
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
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_lengths_files() {
    let d = scratch("bad-lengths");
    let good = good_file(&d);
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
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn missing_npy_file_is_an_io_error() {
    let d = scratch("absent-npy");
    let (e, s) = err(npy::read_f32(&d.join("absent.npy")));
    assert!(
        matches!(e, LstmError::Io { .. }) && s.contains("absent.npy"),
        "{s}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_weight_files_and_directories() {
    let d = scratch("bad-weight-dir");
    let good = good_file(&d);
    // A weight directory with a truncated tensor names that file.
    let wdir = d.join("weights");
    std::fs::create_dir(&wdir).unwrap();
    write(&wdir, "W.npy", &npy_bytes("<f4", "(1, 16, 3)", &floats()));
    let (_, s) = err(format::load(&wdir, None, None));
    assert!(s.contains("W.npy"), "{s}");
    let (_, s) = err(format::load(&d.join("empty-dir-absent"), None, None));
    assert!(s.contains("empty-dir-absent"), "{s}");
    let (_, s) = err(format::load(&good, None, None));
    assert!(s.contains("directory of .npy files"), "{s}");
    std::fs::remove_dir_all(&d).ok();
}

/// Shapes whose element count overflows, or that claim a dimension no array can have,
/// are errors naming the file; an empty array may have a huge dimension, and reads.
#[test]
fn shapes_that_overflow() {
    let d = scratch("overflow-npy");
    let cases = [
        ("product-overflows.npy", "(1099511627776, 1099511627776)"),
        ("usize-max.npy", "(18446744073709551615, 2)"),
        ("beyond-isize.npy", "(0, 18446744073709551615)"),
    ];
    for (name, shape) in cases {
        let (e, s) = err(npy::read_f32(&write(
            &d,
            name,
            &npy_bytes("<f4", shape, &floats()),
        )));
        assert!(
            matches!(e, LstmError::Npy { .. }) && s.contains(name),
            "{name}: {e:?}"
        );
    }
    let empty = write(
        &d,
        "empty-huge.npy",
        &npy_bytes("<f4", "(0, 4611686018427387904)", &[]),
    );
    assert_eq!(npy::read_f32(&empty).unwrap().shape(), [0, 1 << 62]);
    std::fs::remove_dir_all(&d).ok();
}

/// A weight file far larger than memory (a sparse 8 TiB file, no disk space) is an
/// error naming the file, not an abort on a failed allocation: as a `.npy` file, in a
/// `.npy` weight directory, and as a safetensors file.
#[test]
fn files_larger_than_memory() {
    let d = scratch("sparse-weights");
    let len = 1u64 << 43;
    let x = write(&d, "x.npy", &npy_bytes("<f4", "(2, 2)", &floats()));
    let Some(_x) = huge_sparse_file(&x, len) else {
        return;
    };
    let (_, s) = err(npy::read_f32(&x));
    assert!(
        s.contains("x.npy") && s.contains("cannot be held in memory"),
        "{s}"
    );
    let (_, s) = err(TensorMap::read_npy_dir(&d));
    assert!(
        s.contains("x.npy") && s.contains("cannot be held in memory"),
        "{s}"
    );
    let st = write(&d, "w.safetensors", b"");
    let _st = huge_sparse_file(&st, len).unwrap();
    let (_, s) = err(TensorMap::read_safetensors(&st));
    assert!(s.contains("w.safetensors"), "{s}");
    std::fs::remove_dir_all(&d).ok();
}

/// Found by fuzzing (FUZZING.md): a 100-byte version-2 file whose header length field
/// claims ~2.9 GB made ndarray-npy allocate that much before reading. Now a Format
/// error, for every version's length field.
#[test]
fn header_longer_than_the_file() {
    let d = scratch("npy-header-len");
    let mut v2 = b"\x93NUMPY\x02\x00\x76\x00\xab\xab".to_vec();
    v2.extend([0xab; 88]);
    let mut v1 = b"\x93NUMPY\x01\x00\xff\xff".to_vec();
    v1.extend(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n");
    for (name, bytes) in [("v2.npy", v2), ("v1.npy", v1)] {
        let path = write(&d, name, &bytes);
        match npy::read_any_f32(&path) {
            Err(LstmError::Format { reason, .. }) => {
                assert!(reason.contains("header claims"), "{name}: {reason}")
            }
            other => panic!("{name}: expected a Format error, got {other:?}"),
        }
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Found by fuzzing (FUZZING.md): a 140-byte header nesting brackets 13 levels deep
/// took ndarray-npy's backtracking parser 73 ms (1 s under the fuzzer), doubling with
/// each level more. Headers nested deeper than any valid one are refused before parsing.
#[test]
fn header_nested_too_deep() {
    let d = scratch("npy-nesting");
    let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, (1,{(4, ({{(4, ({{ (2,)}})})}),)), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16 + 1).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.push(b'\n');
    bytes.extend([1, 0, 0, 0]);
    let path = write(&d, "deep.npy", &bytes);
    let t = std::time::Instant::now();
    match npy::read_any_f32(&path) {
        Err(LstmError::Format { reason, .. }) => {
            assert!(reason.contains("nests brackets"), "{reason}")
        }
        other => panic!("expected a Format error, got {other:?}"),
    }
    assert!(
        t.elapsed().as_secs_f64() < 0.05,
        "refused in {:?}",
        t.elapsed()
    );
    std::fs::remove_dir_all(&d).ok();
}

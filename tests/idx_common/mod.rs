//! Helpers shared by the IDX tests (tests/idx.rs, tests/idx_errors.rs): scratch
//! files, hand-made IDX bytes, gzip, and checks on the error messages.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use lstm_wgpu::data::{bundled_mnist_dir, read_idx_u8};
use lstm_wgpu::LstmError;

pub fn bundled(name: &str) -> PathBuf {
    bundled_mnist_dir().join(name)
}

pub fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idx-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn write_plain(name: &str, bytes: &[u8]) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn write_gz(name: &str, bytes: &[u8]) -> PathBuf {
    write_plain(name, &gzip(bytes))
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// An IDX file: magic `00 00 dtype ndim`, big-endian dims, data.
pub fn idx(dtype: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, dtype, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The Format error's message for reading `bytes` both as a plain file and gzipped.
/// Without the `gzip` feature the gzipped file must give the "built without" error
/// instead, and only the plain file's message is returned.
pub fn format_errors(name: &str, bytes: &[u8]) -> Vec<String> {
    let plain = write_plain(&format!("{name}.idx"), bytes);
    let gz = write_gz(&format!("{name}.idx.gz"), bytes);
    let plain_msg = format_error(read_idx_u8(&plain), &plain);
    let gz_msg = format_error(read_idx_u8(&gz), &gz);
    if cfg!(feature = "gzip") {
        vec![plain_msg, gz_msg]
    } else {
        assert_without_gzip(&gz_msg);
        vec![plain_msg]
    }
}

/// The message of reading a gzip file in a build without the `gzip` feature.
pub fn assert_without_gzip(msg: &str) {
    assert_contains(msg, &["gzip-compressed", "without the `gzip` feature"]);
}

pub fn format_error<T: std::fmt::Debug>(r: Result<T, LstmError>, path: &Path) -> String {
    match r {
        Ok(v) => panic!("{}: expected an error, got {v:?}", path.display()),
        Err(e @ LstmError::Format { .. }) => {
            let s = e.to_string();
            assert!(
                s.contains(&path.display().to_string()) || s.contains("MNIST"),
                "message should name the file: {s}"
            );
            s
        }
        Err(e) => panic!("{}: expected a Format error, got {e:?}", path.display()),
    }
}

pub fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} should contain {p:?}");
    }
}

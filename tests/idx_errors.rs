//! The IDX reader on broken files: every kind gives a clear `LstmError` naming the
//! file, never a panic or a huge allocation. Each broken file is read both plain and
//! gzipped (the gzipped one, without the `gzip` feature, must say that it needs it).

mod idx_common;
mod sparse_file;

use idx_common::*;
use lstm_wgpu::data::read_idx_u8;
use lstm_wgpu::LstmError;
use sparse_file::huge_sparse_file;

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = tmp("does-not-exist.idx");
    let e = read_idx_u8(&path).unwrap_err();
    assert!(matches!(e, LstmError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("does-not-exist.idx"), "{e}");
}

#[test]
fn wrong_magic() {
    for msg in format_errors("wrong-magic", &[0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1, 7]) {
        assert_contains(&msg, &["not an IDX file", "12 34 08 03"]);
    }
}

#[test]
fn unsupported_and_unknown_dtypes() {
    let f32_file = idx(0x0D, &[2], &[0; 8]);
    for msg in format_errors("dtype-f32", &f32_file) {
        assert_contains(&msg, &["unsupported", "0x0d", "f32", "u8"]);
    }
    for msg in format_errors("dtype-unknown", &idx(0x42, &[1], &[0])) {
        assert_contains(&msg, &["unknown IDX element type 0x42"]);
    }
    for msg in format_errors("zero-dims", &idx(0x08, &[], &[])) {
        assert_contains(&msg, &["0 dimensions"]);
    }
}

#[test]
fn truncated_headers() {
    for (name, bytes) in [("empty", &[][..]), ("two-bytes", &[0, 0][..])] {
        for msg in format_errors(name, bytes) {
            assert_contains(&msg, &["truncated", "4-byte IDX magic"]);
        }
    }
    // Three dimensions announced, two given.
    let mut short = idx(0x08, &[10, 28], &[]);
    short[3] = 3;
    for msg in format_errors("short-dims", &short) {
        assert_contains(
            &msg,
            &["truncated header", "3 dimensions need 12 bytes", "only 8"],
        );
    }
}

#[test]
fn dims_that_overflow() {
    for msg in format_errors("overflow", &idx(0x08, &[u32::MAX; 3], &[1, 2, 3])) {
        assert_contains(&msg, &["overflow", "4294967295"]);
    }
}

/// A header that claims far more data than the file holds is caught before anything of
/// that size is allocated (this would abort the test process otherwise).
#[test]
fn huge_claims_allocate_nothing() {
    for dims in [&[u32::MAX, u32::MAX][..], &[60_000, 28, 28][..]] {
        for msg in format_errors("huge-claim", &idx(0x08, dims, &[1, 2, 3, 4])) {
            assert_contains(&msg, &["truncated", "bytes missing", "has 4"]);
        }
    }
}

#[test]
fn truncated_and_trailing_data() {
    let data: Vec<u8> = (0..2 * 28 * 28).map(|i| i as u8).collect();
    let full = idx(0x08, &[2, 28, 28], &data);
    for msg in format_errors("truncated-data", &full[..full.len() - 5]) {
        assert_contains(
            &msg,
            &[
                "truncated: 5 bytes missing",
                "[2, 28, 28]",
                "need 1568",
                "has 1563",
            ],
        );
    }
    let mut long = full.clone();
    long.extend_from_slice(&[9; 3]);
    for msg in format_errors("trailing-data", &long) {
        assert_contains(&msg, &["3 trailing bytes", "need 1568", "has 1571"]);
    }
}

#[cfg(feature = "gzip")]
#[test]
fn corrupt_gzip_streams() {
    let labels_gz = std::fs::read(bundled("labels-idx1-ubyte.gz")).unwrap();

    // Cut short: a download that stopped early.
    let path = write_plain("cut.gz", &labels_gz[..labels_gz.len() / 2]);
    let msg = format_error(read_idx_u8(&path), &path);
    assert_contains(&msg, &["gzip stream is corrupt or truncated"]);

    // Only the 8-byte trailer (CRC32 + length) missing: all data there, still caught.
    let path = write_plain("no-trailer.gz", &labels_gz[..labels_gz.len() - 8]);
    let msg = format_error(read_idx_u8(&path), &path);
    assert_contains(&msg, &["gzip stream is corrupt or truncated"]);

    // Damaged CRC.
    let mut bad_crc = labels_gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let path = write_plain("bad-crc.gz", &bad_crc);
    let msg = format_error(read_idx_u8(&path), &path);
    assert_contains(&msg, &["gzip stream is corrupt or truncated"]);

    // Damaged compressed data: flip bytes in the middle until the reader notices
    // (every single flip must give an error, never wrong data or a panic).
    for offset in [40, labels_gz.len() / 3, labels_gz.len() / 2] {
        let mut bad = labels_gz.clone();
        bad[offset] ^= 0x55;
        let path = write_plain(&format!("flipped-{offset}.gz"), &bad);
        let msg = format_error(read_idx_u8(&path), &path);
        assert!(
            msg.contains("gzip stream is corrupt") || msg.contains("bytes missing"),
            "{msg}"
        );
    }

    // Junk after the gzip member.
    let mut junk = labels_gz.clone();
    junk.extend_from_slice(b"junk after the stream");
    let path = write_plain("junk-after.gz", &junk);
    format_error(read_idx_u8(&path), &path);
}

/// Without the `gzip` feature a gzip file (here, the bundled labels) is a Format error
/// that says what is missing, not a panic and not a parse of compressed bytes.
#[cfg(not(feature = "gzip"))]
#[test]
fn gzip_file_without_the_gzip_feature() {
    let path = bundled("labels-idx1-ubyte.gz");
    assert_without_gzip(&format_error(read_idx_u8(&path), &path));
    let e = lstm_wgpu::data::load_bundled_mnist().unwrap_err();
    assert!(matches!(e, LstmError::Format { .. }), "{e:?}");
    assert_without_gzip(&e.to_string());
}

/// A file whose length really matches a huge header (here a sparse 8 TiB file, which
/// takes no disk space) cannot be held in memory: the reader says so instead of
/// aborting the process on a failed allocation.
#[test]
fn file_larger_than_memory() {
    let dims = [1u32 << 21, 1 << 22]; // 2^43 data bytes
    let path = write_plain("sparse-8tib.idx", &idx(0x08, &dims, &[]));
    let Some(_file) = huge_sparse_file(&path, 12 + (1 << 43)) else {
        return;
    };
    let msg = format_error(read_idx_u8(&path), &path);
    std::fs::remove_file(&path).unwrap();
    assert_contains(&msg, &["cannot reserve memory", "8796093022208 data bytes"]);
}

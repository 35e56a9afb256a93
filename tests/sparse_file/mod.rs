//! A sparse file far larger than memory, for the tests that a reader refuses to
//! allocate what it cannot hold (instead of aborting the process).
#![allow(dead_code)]

use std::path::Path;

/// Grows `path` to `len` bytes without writing them (a sparse file), when this machine
/// refuses allocations far beyond its memory (Linux overcommit mode 0 or 2) and the
/// file system allows the size. `None` (after saying why) skips the test: with
/// unlimited overcommit, the reader would go on to read the terabytes of zeros.
pub fn huge_sparse_file(path: &Path, len: u64) -> Option<std::fs::File> {
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if !matches!(mode.trim(), "0" | "2") {
        eprintln!("skipping: overcommit mode {mode:?} would let a huge allocation succeed");
        return None;
    }
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    match file.set_len(len) {
        Ok(()) => Some(file),
        Err(e) => {
            eprintln!("skipping: cannot make a sparse {len}-byte file: {e}");
            std::fs::remove_file(path).ok();
            None
        }
    }
}

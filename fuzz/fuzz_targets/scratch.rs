// Included by every target: the readers take paths (they look at the file's length and
// stream it), so each input is written to a per-process file in memory-backed /dev/shm.
fn scratch_file(data: &[u8], ext: &str) -> std::path::PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm".into()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("lstm-wgpu-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    path
}

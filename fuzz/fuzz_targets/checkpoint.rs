//! The training checkpoint loader (safetensors with `lstm.*`, `fc.*` and metadata).
#![no_main]
include!("scratch.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch_file(data, "safetensors");
    if let Ok(params) = lstm_wgpu::train::load_checkpoint(&path, None) {
        params.validate().expect("a loaded checkpoint validates");
    }
});

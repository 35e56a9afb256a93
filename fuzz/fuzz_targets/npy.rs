//! The `.npy` reader in its three uses: arrays of any dtype as f32, float arrays, lengths.
#![no_main]
include!("scratch.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch_file(data, "npy");
    let _ = lstm_wgpu::interop::npy::read_any_f32(&path);
    let _ = lstm_wgpu::interop::npy::read_f32(&path);
    let _ = lstm_wgpu::interop::npy::read_lengths(&path);
});

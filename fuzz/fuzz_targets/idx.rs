//! The IDX reader (plain and gzip): any bytes give an `IdxU8` or an error, never a panic,
//! a hang or an allocation the file cannot back.
#![no_main]
include!("scratch.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch_file(data, "idx");
    if let Ok(idx) = lstm_wgpu::data::read_idx_u8(&path) {
        // Whatever parsed must be self-consistent: the data is what the dimensions say.
        assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
    }
});

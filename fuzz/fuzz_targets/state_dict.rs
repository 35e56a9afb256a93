//! A safetensors state dict through the tensor layer, format detection and every
//! importer's name and shape mapping (PyTorch, Keras, ONNX), and a weight check.
#![no_main]

use lstm_wgpu::interop::{format, keras, onnx, tensors::TensorMap, torch};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(map) = TensorMap::from_safetensors_bytes(data) else {
        return;
    };
    for prefix in ["", "lstm.", "lstm/"] {
        for w in [
            torch::from_tensors(&map, prefix),
            keras::from_tensors(&map, prefix),
            onnx::from_tensors(&map, prefix),
        ]
        .into_iter()
        .flatten()
        {
            // What imported must be a valid model of its config.
            w.validate().expect("imported weights validate");
        }
    }
    if let Ok((fmt, prefix)) = format::detect(&map, "fuzz", None, None) {
        let _ = fmt.from_tensors(&map, &prefix);
    }
});

//! Generates the ONNX protobuf message types from the vendored `proto/onnx.proto` when
//! the `onnx` feature is on; does nothing otherwise.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "onnx")]
    onnx_messages();
}

/// `$OUT_DIR/onnx.rs`: prost's types for package `onnx`, compiled by protox (pure Rust,
/// so no `protoc` needs to be installed).
#[cfg(feature = "onnx")]
fn onnx_messages() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("compiling proto/onnx.proto: {e}"));
    prost_build::Config::new()
        // The proto's comments hold indented text that rustdoc would run as doctests.
        .disable_comments(["."])
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the ONNX types: {e}"));
}

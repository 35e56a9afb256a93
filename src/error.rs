//! The crate's one error type. wgpu's own errors are kept as the `source`
//! so callers (and `anyhow`-style reporters) see the full chain.

use thiserror::Error;

/// Everything that can go wrong in `lstm_wgpu`.
#[derive(Debug, Error)]
pub enum LstmError {
    /// A configuration value makes no sense (zero size, …).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An array or tensor has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },

    /// A value is out of range (a sequence length of 0, a non-finite number, …).
    #[error("invalid value for {what}: {reason}")]
    Value { what: String, reason: String },

    /// The request needs more than the device allows.
    #[error("exceeds device limit: {0}")]
    DeviceLimit(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A weight or data file is corrupt, truncated or not what it claims to be.
    #[error("{what}: {reason}")]
    Format { what: String, reason: String },

    /// A `.npy` file is corrupt or truncated, or could not be written.
    #[error("{path}: {what}")]
    Npy {
        path: String,
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The safetensors container itself is malformed.
    #[error("safetensors: {0}")]
    SafeTensors(#[from] safetensors::SafeTensorError),

    /// No GPU adapter could be found (or none matched `WGPU_ADAPTER_NAME`/`WGPU_BACKEND`).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),

    /// The adapter was found but refused to create a device.
    #[error("could not create a GPU device")]
    RequestDevice(#[source] wgpu::RequestDeviceError),

    /// wgpu reported a validation, out-of-memory or internal error.
    #[error("GPU error during {during}")]
    Gpu {
        during: &'static str,
        #[source]
        source: wgpu::Error,
    },

    /// Mapping a buffer for readback failed.
    #[error("GPU readback failed")]
    Map(#[source] wgpu::BufferAsyncError),

    /// A mapped buffer could not be viewed.
    #[error("GPU readback view failed")]
    MapRange(#[source] wgpu::MapRangeError),

    /// The device was lost (driver reset, removal, `destroy`); every later call on its
    /// context fails the same way: make a new `GpuContext`.
    #[error("the GPU device was lost ({0}); create a new GpuContext to continue")]
    DeviceLost(String),

    /// Waiting for the GPU failed (device lost, timeout).
    #[error("waiting for the GPU failed")]
    Poll(#[source] wgpu::PollError),

    /// A node of an ONNX model failed (feature `onnx`); `source` says how.
    #[error("ONNX node '{node}' ({op}): {source}")]
    OnnxNode {
        node: String,
        op: String,
        #[source]
        source: Box<LstmError>,
    },

    /// Data-parallel training: the ranks disagree (settings, data, devices, parameters)
    /// or their communication failed.
    #[error("data-parallel training: {0}")]
    Distributed(String),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, LstmError>;

impl LstmError {
    pub fn shape(
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        LstmError::Shape {
            what: what.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        LstmError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn format(what: impl Into<String>, reason: impl Into<String>) -> Self {
        LstmError::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn value(what: impl Into<String>, reason: impl Into<String>) -> Self {
        LstmError::Value {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// `error: …` and its chain of causes (`  caused by: …`), one per line, leaving out a
/// cause whose text the line above already shows (many errors embed their source's
/// message): what the binaries print before exiting with 1.
pub fn report(e: &dyn std::error::Error) -> String {
    let mut out = format!("error: {e}");
    let mut shown = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !shown.contains(&text) {
            out.push_str(&format!("\n  caused by: {text}"));
        }
        shown = text;
        source = s.source();
    }
    out
}

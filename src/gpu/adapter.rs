//! Which adapter and which limits: the choice `GpuContext` makes before it creates a
//! device, and the descriptions it prints.

use crate::error::{LstmError, Result};

/// Which adapter to use. `Default` honours `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`
/// and `WGPU_POWER_PREF` like wgpu's own examples.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Restrict to these backends (`None`: `WGPU_BACKEND` or all).
    pub backends: Option<wgpu::Backends>,
    /// Pick the first adapter whose name contains this (case-insensitive);
    /// `None`: `WGPU_ADAPTER_NAME` or the best by device type.
    pub adapter_name: Option<String>,
    /// Which limits to request (`None`: `LSTM_GPU_LIMITS`, else the adapter's own).
    pub limits: Option<LimitsRequest>,
    /// Take the candidate at this index (modulo their count) instead of the first: the
    /// candidates are the adapters matching `adapter_name`, or else every adapter in
    /// order of preference. One index per process (e.g. an MPI rank) spreads processes
    /// over the GPUs of a host.
    pub adapter_index: Option<usize>,
    /// Subgroup shuffles in the split-K step where the adapter has them (`None`:
    /// on unless `LSTM_SUBGROUPS=0`; see [`crate::GpuContext::shuffle_lanes`]).
    pub subgroups: Option<bool>,
}

/// The limits a context requests from its adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LimitsRequest {
    /// Everything the adapter offers (largest bindings, most buffers).
    #[default]
    Adapter,
    /// `wgpu::Limits::default()`: what WebGPU guarantees everywhere.
    WebGpu,
    /// `wgpu::Limits::downlevel_defaults()`: GLES 3.1-class devices.
    Downlevel,
}

impl LimitsRequest {
    /// `LSTM_GPU_LIMITS` = `adapter` | `webgpu` | `downlevel` (unset: `adapter`).
    pub fn from_env() -> Result<Self> {
        match std::env::var("LSTM_GPU_LIMITS").ok().as_deref() {
            None | Some("") | Some("adapter") => Ok(LimitsRequest::Adapter),
            Some("webgpu") | Some("default") => Ok(LimitsRequest::WebGpu),
            Some("downlevel") => Ok(LimitsRequest::Downlevel),
            Some(other) => Err(LstmError::Config(format!(
                "LSTM_GPU_LIMITS must be adapter, webgpu or downlevel, got {other:?}"
            ))),
        }
    }

    pub(crate) fn limits(self, adapter: &wgpu::Adapter) -> wgpu::Limits {
        match self {
            LimitsRequest::Adapter => adapter.limits(),
            LimitsRequest::WebGpu => wgpu::Limits::default(),
            LimitsRequest::Downlevel => wgpu::Limits::downlevel_defaults(),
        }
    }
}

/// The adapter `opts` (or the environment) asks for; the best by device type otherwise.
pub(crate) async fn pick_adapter(opts: &GpuOptions) -> Result<wgpu::Adapter> {
    // Without an explicit choice, try the native APIs first and fall back to GL only if
    // they offer nothing (probing GL on a headless box prints EGL noise and is slow).
    let explicit = opts.backends.or_else(wgpu::Backends::from_env);
    let tries = match explicit {
        Some(b) => vec![b],
        None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY],
    };
    let mut adapters = Vec::new();
    let mut backends = wgpu::Backends::empty();
    for b in tries {
        backends |= b;
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = b;
        adapters = wgpu::Instance::new(desc).enumerate_adapters(b).await;
        if !adapters.is_empty() {
            break;
        }
    }
    let wanted = opts
        .adapter_name
        .clone()
        .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
    let names: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    let mut candidates: Vec<wgpu::Adapter> = match &wanted {
        Some(name) => {
            let needle = name.to_lowercase();
            adapters
                .into_iter()
                .filter(|a| a.get_info().name.to_lowercase().contains(&needle))
                .collect()
        }
        None => {
            let mut c: Vec<wgpu::Adapter> = adapters
                .into_iter()
                .filter(|a| a.get_info().device_type != wgpu::DeviceType::Other)
                .collect();
            c.sort_by_key(|a| rank(a.get_info().device_type));
            c
        }
    };
    let adapter = match candidates.len() {
        0 => None,
        n => Some(candidates.swap_remove(opts.adapter_index.unwrap_or(0) % n)),
    };
    adapter.ok_or_else(|| {
        LstmError::NoAdapter(format!(
            "backends {backends:?}{}; adapters seen: [{}]",
            wanted
                .map(|n| format!(", name containing {n:?}"))
                .unwrap_or_default(),
            names.join("; ")
        ))
    })
}

/// Every adapter wgpu can see on this machine, described (for diagnostics).
pub fn list_adapters() -> Vec<String> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::all();
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.iter().map(|a| describe(&a.get_info())).collect()
}

/// Preference order when no name is asked for: real GPUs first, software last.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

pub(crate) fn describe(info: &wgpu::AdapterInfo) -> String {
    let soft = if info.device_type == wgpu::DeviceType::Cpu {
        ", SOFTWARE adapter"
    } else {
        ""
    };
    format!(
        "{} ({:?}, {:?}{soft})",
        info.name, info.backend, info.device_type
    )
}

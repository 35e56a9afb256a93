//! Adapter choice, device creation, error scopes and the one readback function.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::kernels::Kernels;

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
}

/// How many buffers and bind groups a context has created ([`GpuContext::creation_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreationCounts {
    pub buffers: usize,
    pub bind_groups: usize,
}

/// A wgpu device and queue plus what the crate needs to know about them.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Largest storage binding the scheduler may use; normally the device's limit,
    /// lowered by tests to exercise multi-chunk runs on small data.
    max_binding_bytes: u64,
    /// The device was created with `TIMESTAMP_QUERY` (pass-level GPU timestamps).
    timestamps: bool,
    /// Use the kernel forms shaped for a CPU running the shaders (see `is_software`).
    software_kernels: bool,
    readbacks: AtomicUsize,
    buffers_created: AtomicUsize,
    bind_groups_created: AtomicUsize,
    kernels: OnceLock<Kernels>,
    /// A 16-byte storage buffer bound where a kernel's optional operand is unused.
    dummy: wgpu::Buffer,
}

impl GpuContext {
    /// Best adapter honouring the environment (see [`GpuOptions`]).
    pub fn new() -> Result<Self> {
        Self::with_options(&GpuOptions::default())
    }

    pub fn with_options(opts: &GpuOptions) -> Result<Self> {
        pollster::block_on(Self::create(opts))
    }

    async fn create(opts: &GpuOptions) -> Result<Self> {
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
        let adapter = match &wanted {
            Some(name) => {
                let needle = name.to_lowercase();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle))
            }
            None => adapters
                .into_iter()
                .filter(|a| a.get_info().device_type != wgpu::DeviceType::Other)
                .min_by_key(|a| rank(a.get_info().device_type)),
        };
        let adapter = adapter.ok_or_else(|| {
            LstmError::NoAdapter(format!(
                "backends {backends:?}{}; adapters seen: [{}]",
                wanted
                    .map(|n| format!(", name containing {n:?}"))
                    .unwrap_or_default(),
                names.join("; ")
            ))
        })?;
        let limits = adapter.limits();
        // Timestamp queries are optional: benchmarks use them for kernel time where the
        // adapter has them and fall back to wall-clock time elsewhere.
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lstm-wgpu"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(LstmError::RequestDevice)?;
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused operand"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuContext {
            dummy,
            device,
            queue,
            info: adapter.get_info(),
            max_binding_bytes: limits.max_storage_buffer_binding_size,
            limits,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            software_kernels: adapter.get_info().device_type == wgpu::DeviceType::Cpu,
            readbacks: AtomicUsize::new(0),
            buffers_created: AtomicUsize::new(0),
            bind_groups_created: AtomicUsize::new(0),
            kernels: OnceLock::new(),
        })
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// "name (backend, device type)" with software adapters labelled as such.
    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    /// True for CPU rasterizers such as lavapipe or SwiftShader.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Largest storage binding the scheduler plans with.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding_bytes
    }

    /// Lowers the binding size the scheduler plans with (it can never exceed the device's).
    /// Long sequences are split into chunks that fit: tests use this to force chunking.
    pub fn set_max_binding_bytes(&mut self, bytes: u64) {
        self.max_binding_bytes = bytes.min(self.limits.max_storage_buffer_binding_size);
    }

    /// Whether the kernels take their software-adapter forms (barrier-free, one operand
    /// on uniform addresses: `matmul.wgsl`'s `main_rows`, `lstm_step.wgsl`'s
    /// `step_units`/`step_rows`). On by default exactly on software adapters.
    pub fn software_kernels(&self) -> bool {
        self.software_kernels
    }

    /// Chooses the kernel forms regardless of the adapter (tests run both on one adapter;
    /// benchmarks compare them). Results agree to rounding either way.
    pub fn set_software_kernels(&mut self, on: bool) {
        self.software_kernels = on;
    }

    /// Whether compute passes can carry GPU timestamps (`TIMESTAMP_QUERY`).
    pub fn has_timestamps(&self) -> bool {
        self.timestamps
    }

    /// Nanoseconds per timestamp tick.
    pub(crate) fn timestamp_period_ns(&self) -> f64 {
        f64::from(self.queue.get_timestamp_period())
    }

    /// How many readbacks (GPU → host waits) this context has done.
    pub fn readback_count(&self) -> usize {
        self.readbacks.load(Ordering::Relaxed)
    }

    /// Buffers and bind groups this context has created so far (through `gpu::buffers`,
    /// staging buffers of readbacks excluded): a repeated job should add none.
    pub fn creation_counts(&self) -> CreationCounts {
        CreationCounts {
            buffers: self.buffers_created.load(Ordering::Relaxed),
            bind_groups: self.bind_groups_created.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_buffer(&self) {
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_bind_group(&self) {
        self.bind_groups_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Bound in place of an optional operand a kernel does not read.
    pub(crate) fn dummy(&self) -> &wgpu::Buffer {
        &self.dummy
    }

    /// The compiled pipelines, built on first use and shared by every model on this context.
    pub(crate) fn kernels(&self) -> Result<&Kernels> {
        if let Some(k) = self.kernels.get() {
            return Ok(k);
        }
        let k = self.scoped("compiling shaders", || Ok(Kernels::new(&self.device)))?;
        Ok(self.kernels.get_or_init(|| k))
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns
    /// what wgpu reports into an [`LstmError::Gpu`].
    pub(crate) fn scoped<T>(
        &self,
        during: &'static str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(source) = v.or(o) {
            return Err(LstmError::Gpu { during, source });
        }
        out
    }

    /// Submits `encoder` and blocks until the GPU has finished it (nothing is read back).
    /// Benchmarks and probes use it to time work that stays on the GPU.
    pub(crate) fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.queue.submit([encoder.finish()]);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(LstmError::Poll)?;
        Ok(())
    }

    /// Submits `encoder`, copying each `(buffer, bytes)` into a staging buffer first,
    /// then waits once and returns the contents as f32 vectors. This is the only
    /// place that maps buffers or polls the device.
    pub(crate) fn submit_and_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        sources: &[(&wgpu::Buffer, u64)],
    ) -> Result<Vec<Vec<f32>>> {
        let staging: Vec<wgpu::Buffer> = sources
            .iter()
            .map(|&(src, bytes)| {
                let dst = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback staging"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(src, 0, &dst, 0, bytes);
                dst
            })
            .collect();
        self.queue.submit([encoder.finish()]);
        let receivers: Vec<_> = staging
            .iter()
            .map(|buf| {
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        self.readbacks.fetch_add(1, Ordering::Relaxed);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(LstmError::Poll)?;
        let mut out = Vec::with_capacity(staging.len());
        for (buf, rx) in staging.iter().zip(receivers) {
            match pollster::block_on(rx.receive()) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(LstmError::Map(e)),
                None => return Err(LstmError::Map(wgpu::BufferAsyncError)),
            }
            let view = buf.get_mapped_range(..).map_err(LstmError::MapRange)?;
            out.push(bytemuck::cast_slice::<u8, f32>(&view).to_vec());
            drop(view);
            buf.unmap();
        }
        Ok(out)
    }
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

fn describe(info: &wgpu::AdapterInfo) -> String {
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

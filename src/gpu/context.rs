//! Adapter choice, device creation, error scopes and the one readback function.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::adapter::{describe, pick_adapter, GpuOptions, LimitsRequest};
use super::faults::Faults;
use super::kernels::Kernels;

use crate::error::{LstmError, Result};

/// How many buffers and bind groups a context has created ([`GpuContext::creation_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreationCounts {
    pub buffers: usize,
    pub bind_groups: usize,
    /// Bytes of every buffer created (an upper bound of the peak held at once).
    pub buffer_bytes: u64,
}

/// A wgpu device and queue plus what the crate needs to know about them.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits_request: LimitsRequest,
    limits: wgpu::Limits,
    /// Largest storage binding the scheduler may use; normally the device's limit,
    /// lowered by tests to exercise multi-chunk runs on small data.
    max_binding_bytes: u64,
    /// The device was created with `TIMESTAMP_QUERY` (pass-level GPU timestamps).
    timestamps: bool,
    /// Shaders may convert f16 ↔ f32 (`unpack2x16float`: the f16 weights' step).
    f16_unpack: bool,
    /// Use the kernel forms shaped for a CPU running the shaders (see `is_software`).
    software_kernels: bool,
    /// Among those, the written-out forms where a shape allows (see `quad_forms`).
    quad_forms: bool,
    /// `lanes_sum`'s `SHUFFLE_BELOW`: lanes summed by subgroup shuffles (1: none).
    shuffle_lanes: u32,
    /// The tiled form splits the weight gradients over T·B where they have few tiles.
    split_k: bool,
    readbacks: AtomicUsize,
    buffers_created: AtomicUsize,
    buffer_bytes: AtomicU64,
    bind_groups_created: AtomicUsize,
    kernels: OnceLock<Kernels>,
    /// A 16-byte storage buffer bound where a kernel's optional operand is unused.
    dummy: wgpu::Buffer,
    faults: Arc<Faults>,
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
        let adapter = pick_adapter(opts).await?;
        let request = match opts.limits {
            Some(r) => r,
            None => LimitsRequest::from_env()?,
        };
        let limits = request.limits(&adapter);
        // Timestamp queries are optional: benchmarks use them for kernel time where the
        // adapter has them and fall back to wall-clock time elsewhere.
        let features = (adapter.features() & wgpu::Features::TIMESTAMP_QUERY)
            | super::subgroups::feature(&adapter, super::subgroups::wanted(opts.subgroups));
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lstm-wgpu"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(LstmError::RequestDevice)?;
        let faults = Faults::watch(&device);
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused operand"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let shuffle_lanes =
            super::subgroups::shuffle_lanes(&device, &queue, adapter.get_info().subgroup_min_size);
        Ok(GpuContext {
            dummy,
            device,
            queue,
            info: adapter.get_info(),
            limits_request: request,
            max_binding_bytes: limits.max_storage_buffer_binding_size,
            limits,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            f16_unpack: (adapter.get_downlevel_capabilities().flags)
                .contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32),
            software_kernels: adapter.get_info().device_type == wgpu::DeviceType::Cpu,
            quad_forms: true,
            shuffle_lanes,
            split_k: true,
            readbacks: AtomicUsize::new(0),
            buffers_created: AtomicUsize::new(0),
            buffer_bytes: AtomicU64::new(0),
            bind_groups_created: AtomicUsize::new(0),
            kernels: OnceLock::new(),
            faults,
        })
    }

    /// Whether shaders can unpack f16 pairs (`GpuLstm::new_f16` needs it).
    pub fn has_f16_unpack(&self) -> bool {
        self.f16_unpack
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// "name (backend, device type)" with software adapters labelled as such.
    pub fn describe(&self) -> String {
        match self.limits_request {
            LimitsRequest::Adapter => describe(&self.info),
            r => format!("{} [{r:?} limits]", describe(&self.info)),
        }
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

    /// Whether the software forms include the written-out ones (`step_quads`,
    /// `step_backward_quads`, `matmul_quads`: one register per accumulator, vec4 loads)
    /// where the shape allows them. On by default.
    pub fn quad_forms(&self) -> bool {
        self.quad_forms
    }

    /// `(software_kernels, quad_forms)`: what picks a kernel's form.
    pub(crate) fn kernel_forms(&self) -> (bool, bool) {
        (self.software_kernels, self.quad_forms)
    }

    /// Turns the written-out forms off (or on again): the software forms are then the
    /// plain barrier-free ones, which sum in the same order, so results are bit for bit
    /// the same (tests compare the two; benchmarks time them).
    pub fn set_quad_forms(&mut self, on: bool) {
        self.quad_forms = on;
    }

    /// How many neighbouring lanes the split-K step (`step_gemv`) sums by subgroup
    /// shuffles instead of through workgroup memory: the adapter's smallest subgroup
    /// size where it has subgroups (`LSTM_SUBGROUPS=0` or [`GpuOptions::subgroups`]
    /// turns them off), else 1. The results are the same bits either way.
    pub fn shuffle_lanes(&self) -> u32 {
        self.shuffle_lanes
    }

    /// Whether the tiled GEMM may split a weight gradient over its T·B rows (on by
    /// default; `matmul::SplitGemm`). Jobs built after the change follow it.
    pub fn split_k(&self) -> bool {
        self.split_k
    }

    /// Turns the split off (or on again): benchmarks compare the two on one GPU.
    pub fn set_split_k(&mut self, on: bool) {
        self.split_k = on;
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
            buffer_bytes: self.buffer_bytes.load(Ordering::Relaxed),
            bind_groups: self.bind_groups_created.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_buffer(&self, bytes: u64) {
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
        self.buffer_bytes.fetch_add(bytes, Ordering::Relaxed);
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
        super::kernels::check_limits(&self.limits)?;
        let k = self.scoped("compiling shaders", || {
            Ok(Kernels::new(&self.device, self.shuffle_lanes))
        })?;
        Ok(self.kernels.get_or_init(|| k))
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns
    /// what wgpu reports into an [`LstmError::Gpu`].
    pub(crate) fn scoped<T>(
        &self,
        during: &'static str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        // An error from before this call (a lost device, an unscoped error) is reported
        // before any work, not halfway through it.
        self.check_faults(during)?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        self.check_faults(during)?;
        if let Some(source) = v.or(o) {
            return Err(LstmError::Gpu { during, source });
        }
        out
    }

    /// A lost device, or an error that no scope caught since the last check.
    pub(crate) fn check_faults(&self, during: &'static str) -> Result<()> {
        self.faults.check(during)
    }

    /// Submits `encoder` and blocks until the GPU has finished it (nothing is read back).
    /// Benchmarks and probes use it to time work that stays on the GPU.
    pub(crate) fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.queue.submit([encoder.finish()]);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(LstmError::Poll)?;
        self.check_faults("waiting for the GPU")
    }

    /// A buffer the host maps to read `bytes` back (the copy target of a readback).
    pub(crate) fn staging(&self, bytes: u64) -> wgpu::Buffer {
        self.count_buffer(bytes);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Submits `encoder`, copying each `(buffer, bytes)` into a new staging buffer
    /// first, then waits once and returns the contents as f32 vectors.
    pub(crate) fn submit_and_read(
        &self,
        encoder: wgpu::CommandEncoder,
        sources: &[(&wgpu::Buffer, u64)],
    ) -> Result<Vec<Vec<f32>>> {
        let staging: Vec<wgpu::Buffer> = sources
            .iter()
            .map(|&(_, bytes)| self.staging(bytes))
            .collect();
        let pairs: Vec<(&wgpu::Buffer, &wgpu::Buffer, u64)> = sources
            .iter()
            .zip(&staging)
            .map(|(&(src, bytes), dst)| (src, dst, bytes))
            .collect();
        self.submit_and_read_via(encoder, &pairs)
    }

    /// Submits `encoder`, copying each `(source, staging, bytes)` into its staging buffer
    /// (`MAP_READ`, kept by the caller for the next call), then waits once and returns the
    /// contents as f32 vectors. This is the only place that maps buffers or polls (but
    /// for the subgroup probe, which runs while the context is being made).
    pub(crate) fn submit_and_read_via(
        &self,
        mut encoder: wgpu::CommandEncoder,
        pairs: &[(&wgpu::Buffer, &wgpu::Buffer, u64)],
    ) -> Result<Vec<Vec<f32>>> {
        for &(src, dst, bytes) in pairs {
            encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
        }
        self.queue.submit([encoder.finish()]);
        let receivers: Vec<_> = pairs
            .iter()
            .map(|&(_, buf, bytes)| {
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                buf.slice(..bytes).map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        self.readbacks.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
            // The maps may never complete: do not wait for them.
            self.check_faults("reading results back")?;
            return Err(LstmError::Poll(e));
        }
        // Every buffer whose mapping succeeded is read and unmapped even when another
        // failed: a staging buffer left mapped would fail every later submit.
        let mut out = Vec::with_capacity(pairs.len());
        let mut first_error = None;
        for (&(_, buf, bytes), rx) in pairs.iter().zip(receivers) {
            let read = match pollster::block_on(rx.receive()) {
                Some(Ok(())) => read_mapped(buf, bytes),
                Some(Err(e)) => Err(LstmError::Map(e)),
                None => Err(LstmError::Map(wgpu::BufferAsyncError)),
            };
            match read {
                Ok(v) => out.push(v),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.check_faults("reading results back")?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// The contents of a mapped staging buffer as f32s; unmaps it.
fn read_mapped(buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
    let data = buf
        .get_mapped_range(..bytes)
        .map(|view| bytemuck::cast_slice::<u8, f32>(&view).to_vec())
        .map_err(LstmError::MapRange);
    buf.unmap(); // also when the view failed: the buffer was mapped
    data
}

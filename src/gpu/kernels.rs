//! Compiled pipelines and their uniform structs, one struct per WGSL file.

use bytemuck::{Pod, Zeroable};

use super::shaders;

/// Mirrors `MatmulParams` in `shaders/matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub _pad: [u32; 2],
}

#[allow(dead_code)] // the transposed and accumulating forms serve training
impl MatmulParams {
    pub const A_TRANS: u32 = 1;
    pub const B_TRANS: u32 = 2;
    pub const ACCUMULATE: u32 = 4;
    pub const BIAS: u32 = 8;

    /// `c[m, n] = a[m, k] · b[k, n]`, all row-major and packed.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        MatmulParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            flags: 0,
            lda: k as u32,
            ldb: n as u32,
            ldc: n as u32,
            a_off: 0,
            b_off: 0,
            c_off: 0,
            _pad: [0; 2],
        }
    }
    /// `a` is stored `[k, m]` and used transposed.
    pub fn a_trans(mut self) -> Self {
        self.flags |= Self::A_TRANS;
        self.lda = self.m;
        self
    }
    /// `b` is stored `[n, k]` and used transposed.
    pub fn b_trans(mut self) -> Self {
        self.flags |= Self::B_TRANS;
        self.ldb = self.k;
        self
    }
    pub fn accumulate(mut self) -> Self {
        self.flags |= Self::ACCUMULATE;
        self
    }
    pub fn bias(mut self) -> Self {
        self.flags |= Self::BIAS;
        self
    }
    pub fn lda(mut self, ld: usize) -> Self {
        self.lda = ld as u32;
        self
    }
    pub fn ldb(mut self, ld: usize) -> Self {
        self.ldb = ld as u32;
        self
    }
    pub fn ldc(mut self, ld: usize) -> Self {
        self.ldc = ld as u32;
        self
    }
    /// Element offsets of `a`, `b` and `c` in their buffers.
    pub fn offsets(mut self, a: usize, b: usize, c: usize) -> Self {
        self.a_off = a as u32;
        self.b_off = b as u32;
        self.c_off = c as u32;
        self
    }
    pub fn grid(&self) -> (u32, u32) {
        (self.n.div_ceil(MATMUL_TILE), self.m.div_ceil(MATMUL_TILE))
    }
    /// Grid of the `main_rows` entry point (software adapters).
    pub fn grid_rows(&self) -> (u32, u32) {
        (self.n.div_ceil(MATMUL_ROWS_COLS), self.m.div_ceil(64))
    }
}

/// Mirrors `StepParams` in `shaders/lstm_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct StepParams {
    pub batch: u32,
    pub hidden: u32,
    pub k_rec: u32,
    pub peephole: u32,
    pub out_stride: u32,
    pub out_offset: u32,
    pub save_cache: u32,
    pub _pad: u32,
}

/// Mirrors `StepIndex` in `shaders/lstm_step.wgsl`; one per time step at a dynamic offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct StepIndex {
    pub t_global: u32,
    pub t_local: u32,
    pub parity: u32,
    pub _pad: u32,
}

/// Mirrors `BackwardParams` in `shaders/lstm_step_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BackwardParams {
    pub batch: u32,
    pub hidden: u32,
    pub k_rec: u32,
    pub peephole: u32,
    pub dy_stride: u32,
    pub dy_offset: u32,
    pub has_dy: u32,
    pub _pad: u32,
}

/// Mirrors `BackwardIndex` in `shaders/lstm_step_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BackwardIndex {
    pub t_global: u32,
    pub t_local: u32,
    pub t_prev: u32,
    pub bits: u32,
}

impl BackwardIndex {
    pub const PARITY: u32 = 1;
    pub const FIRST: u32 = 2;
    pub const FINAL: u32 = 4;
}

/// Mirrors `GradParams` in `shaders/lstm_param_grads.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct GradParams {
    pub rows: u32,
    pub hidden: u32,
    pub peephole: u32,
    pub _pad: u32,
}

/// Mirrors `XentParams` in `shaders/softmax_xent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct XentParams {
    pub rows: u32,
    pub classes: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// Mirrors `OptParams` in `shaders/optimizer.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct OptParams {
    pub len: u32,
    pub slot: u32,
    pub slots: u32,
    pub kind: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub max_norm: f32,
    pub bias1: f32,
    pub bias2: f32,
    pub first: u32,
    pub _pad: [u32; 3],
}

/// Hidden units × batch rows of one `lstm_step_backward` workgroup (`main`).
pub(crate) const BACKWARD_TILE: (u32, u32) = (16, 16);
/// The same for its software-adapter form `main_rows`.
pub(crate) const BACKWARD_ROWS_TILE: (u32, u32) = (32, 8);

/// Output tile of `matmul.wgsl` (rows and columns).
pub(crate) const MATMUL_TILE: u32 = 64;
/// Output columns of one `main_rows` workgroup of `matmul.wgsl` (its rows: 64).
pub(crate) const MATMUL_ROWS_COLS: u32 = 8;
/// Hidden units × batch rows of one `step_gemv` workgroup.
pub(crate) const GEMV_TILE: (u32, u32) = (2, 4);
/// Hidden units × batch rows of one `step_tiled` workgroup.
pub(crate) const TILED_TILE: (u32, u32) = (16, 16);
/// Hidden units × batch rows of one `step_units` workgroup.
pub(crate) const UNITS_TILE: (u32, u32) = (32, 4);
/// Hidden units × batch rows of one `step_rows` workgroup.
pub(crate) const ROWS_TILE: (u32, u32) = (32, 8);

/// Which tiling of the step kernel to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepTiling {
    /// `Gemv` up to [`StepTiling::GEMV_MAX_BATCH`], `Tiled` above; on a software
    /// adapter (a CPU running the shaders) `Units` and `Rows` instead.
    #[default]
    Auto,
    /// Split-K matrix-vector product: keeps the GPU busy at B = 1.
    Gemv,
    /// Register-blocked tile over batch × units: large batches.
    Tiled,
    /// One hidden unit per invocation, batch rows uniform, no barriers: small batches
    /// on software adapters.
    Units,
    /// One batch row per invocation, units uniform, no barriers: large batches on
    /// software adapters.
    Rows,
}

impl StepTiling {
    pub const GEMV_MAX_BATCH: usize = 8;

    /// The tiling `Auto` stands for at this batch size, with the software-adapter
    /// kernel forms or not ([`crate::GpuContext::software_kernels`]).
    pub(crate) fn resolve_for(self, batch: usize, software: bool) -> StepTiling {
        let small = batch <= Self::GEMV_MAX_BATCH;
        match (self, software) {
            (StepTiling::Auto, false) if small => StepTiling::Gemv,
            (StepTiling::Auto, false) => StepTiling::Tiled,
            (StepTiling::Auto, true) if small => StepTiling::Units,
            (StepTiling::Auto, true) => StepTiling::Rows,
            (t, _) => t,
        }
    }
}

/// The two pipelines of the forward pass and their layouts.
pub(crate) struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    pub matmul: wgpu::ComputePipeline,
    /// `matmul.wgsl`'s `main_rows`: the same product, shaped for software adapters.
    pub matmul_rows: wgpu::ComputePipeline,
    pub step_layout: wgpu::BindGroupLayout,
    pub step_gemv: wgpu::ComputePipeline,
    pub step_tiled: wgpu::ComputePipeline,
    pub step_units: wgpu::ComputePipeline,
    pub step_rows: wgpu::ComputePipeline,
    pub backward_layout: wgpu::BindGroupLayout,
    pub step_backward: wgpu::ComputePipeline,
    pub step_backward_rows: wgpu::ComputePipeline,
    pub grads_layout: wgpu::BindGroupLayout,
    pub param_grads: wgpu::ComputePipeline,
    pub xent_layout: wgpu::BindGroupLayout,
    pub xent: wgpu::ComputePipeline,
    pub opt_layout: wgpu::BindGroupLayout,
    pub sum_squares: wgpu::ComputePipeline,
    pub update: wgpu::ComputePipeline,
}

/// A bind group layout from one letter per binding, in binding order:
/// `u` uniform, `d` uniform with a dynamic offset, `r` read-only storage, `w` read-write storage.
pub(crate) fn layout(device: &wgpu::Device, label: &str, kinds: &str) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = kinds
        .split_whitespace()
        .enumerate()
        .map(|(i, k)| {
            let ty = match k {
                "u" => uniform(false),
                "d" => uniform(true),
                "r" => storage(true),
                "w" => storage(false),
                other => unreachable!("binding kind {other:?} in {label}"),
            };
            entry(i as u32, ty)
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

fn entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    }
}

fn uniform(dynamic: bool) -> wgpu::BindingType {
    wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Uniform,
        has_dynamic_offset: dynamic,
        min_binding_size: None,
    }
}

fn storage(read_only: bool) -> wgpu::BindingType {
    wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Storage { read_only },
        has_dynamic_offset: false,
        min_binding_size: None,
    }
}

pub(crate) fn pipeline(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    module: &wgpu::ShaderModule,
    entry: &str,
) -> wgpu::ComputePipeline {
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(entry),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: Some(&pl),
        module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Kernels {
        let matmul_layout = layout(device, "matmul", "u r r r w");
        let step_layout = layout(device, "lstm_step", "u d r r r r w w w w");
        let backward_layout = layout(device, "lstm_step_backward", "u d r r r r r r w w");
        let grads_layout = layout(device, "lstm_param_grads", "u r r r w w");
        let xent_layout = layout(device, "softmax_xent", "u r r r w w");
        let opt_layout = layout(device, "optimizer", "u r w w w w");
        let module = |label, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            })
        };
        let matmul_module = module("matmul", shaders::MATMUL);
        let step_module = module("lstm_step", shaders::LSTM_STEP);
        let backward_module = module("lstm_step_backward", shaders::LSTM_STEP_BACKWARD);
        let grads_module = module("lstm_param_grads", shaders::LSTM_PARAM_GRADS);
        let xent_module = module("softmax_xent", shaders::SOFTMAX_XENT);
        let opt_module = module("optimizer", shaders::OPTIMIZER);
        Kernels {
            matmul: pipeline(device, &matmul_layout, &matmul_module, "main"),
            matmul_rows: pipeline(device, &matmul_layout, &matmul_module, "main_rows"),
            step_gemv: pipeline(device, &step_layout, &step_module, "step_gemv"),
            step_tiled: pipeline(device, &step_layout, &step_module, "step_tiled"),
            step_units: pipeline(device, &step_layout, &step_module, "step_units"),
            step_rows: pipeline(device, &step_layout, &step_module, "step_rows"),
            matmul_layout,
            step_backward: pipeline(device, &backward_layout, &backward_module, "main"),
            step_backward_rows: pipeline(device, &backward_layout, &backward_module, "main_rows"),
            param_grads: pipeline(device, &grads_layout, &grads_module, "main"),
            backward_layout,
            grads_layout,
            xent: pipeline(device, &xent_layout, &xent_module, "main"),
            sum_squares: pipeline(device, &opt_layout, &opt_module, "sum_squares"),
            update: pipeline(device, &opt_layout, &opt_module, "update"),
            xent_layout,
            opt_layout,
            step_layout,
        }
    }
}

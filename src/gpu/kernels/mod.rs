//! The kernels: one file per shader (`shaders/<stem>.wgsl` ↔ `kernels/<stem>.rs`),
//! each holding the shader's uniform struct, its tile sizes and the function that
//! records its dispatch. This file compiles them all once per context.

/// Which cell's pointwise math a step kernel runs (both share the recurrent product).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Cell {
    #[default]
    Lstm,
    /// PyTorch's GRU (reset gate after the recurrent product) in the LSTM's four gate slots.
    Gru,
    /// Keras's `reset_after=False` GRU: the same slots, two dispatches per step (the
    /// second one's pipeline is the forms' `reset_n`).
    GruResetBefore,
    /// The LSTM with its recurrent weights stored as f16 (`weights_f16.wgsl`): the
    /// same step, half the bytes; inference only (no backward reads that storage).
    LstmF16,
}

pub mod gru_reset_before_step;
pub mod gru_reset_before_step_backward;
pub mod gru_step;
pub mod gru_step_backward;
pub mod lstm_param_grads;
pub mod lstm_step;
pub mod lstm_step_backward;
pub mod lstm_step_f16;
#[cfg(test)]
mod lstm_step_tests;
pub mod matmul;
mod matmul_params;
mod matmul_quads;
pub mod optimizer_update;
pub mod softmax_xent;

mod host_layout;
mod pipelines;
mod quad_pipelines;
mod sources;
mod step_backward_quads;
mod step_quads;
mod step_tiling;
mod wgsl_gen;
pub(crate) use pipelines::{layout, pipeline};
use quad_pipelines::QuadPipelines;
pub use sources::shaders;
pub(crate) use sources::*;

/// One bound dispatch of a kernel, made once and recorded any number of times (a job
/// that runs again creates nothing).
pub(crate) struct Dispatch {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub grid: (u32, u32),
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
    }
}

/// Every compiled pipeline and its bind group layout, built once per context.
pub(crate) struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    pub matmul: wgpu::ComputePipeline,
    /// `matmul.wgsl`'s `main_rows`: the same product, shaped for software adapters.
    pub matmul_rows: wgpu::ComputePipeline,
    /// `matmul.wgsl`'s `sum_splits`: the second dispatch of a product split over K.
    pub matmul_sum_splits: wgpu::ComputePipeline,
    /// `matmul_quads.wgsl`'s three forms, compiled on first use.
    matmul_quads: std::sync::OnceLock<[wgpu::ComputePipeline; 3]>,
    pub step_layout: wgpu::BindGroupLayout,
    /// `lstm_step`'s forms.
    pub step: StepPipelines,
    /// `gru_step`'s, compiled on first use (most contexts never run a GRU).
    gru_step: std::sync::OnceLock<StepPipelines>,
    gru_reset_before_step: std::sync::OnceLock<StepPipelines>,
    step_f16: std::sync::OnceLock<StepPipelines>,
    device: wgpu::Device,
    /// The step modules' `SHUFFLE_BELOW` (for the cells compiled on first use).
    shuffle_lanes: u32,
    pub backward_layout: wgpu::BindGroupLayout,
    /// `lstm_step_backward`'s forms.
    pub step_backward: BackwardPipelines,
    /// `gru_step_backward`'s, compiled on first use.
    gru_step_backward: std::sync::OnceLock<BackwardPipelines>,
    gru_reset_before_step_backward: std::sync::OnceLock<BackwardPipelines>,
    pub grads_layout: wgpu::BindGroupLayout,
    pub param_grads: wgpu::ComputePipeline,
    /// `lstm_param_grads.wgsl`'s `sum_slices`: the second dispatch of a split over rows.
    pub param_grads_sum: wgpu::ComputePipeline,
    pub xent_layout: wgpu::BindGroupLayout,
    pub xent: wgpu::ComputePipeline,
    pub opt_layout: wgpu::BindGroupLayout,
    pub sum_squares: wgpu::ComputePipeline,
    pub update: wgpu::ComputePipeline,
}

/// The forms of one cell's step kernel: `recurrent_step.wgsl`'s four entry points and
/// the written-out `step_quads`.
pub(crate) struct StepPipelines {
    pub gemv: wgpu::ComputePipeline,
    pub tiled: wgpu::ComputePipeline,
    pub units: wgpu::ComputePipeline,
    pub rows: wgpu::ComputePipeline,
    /// `step_quads`, per batch row count (software adapters, H % 4 == 0).
    pub quads: QuadPipelines,
    /// A cell whose n product needs every unit's r first (`GruResetBefore`): the
    /// second dispatch of each step, `step_reset_n` and its software form.
    pub reset_n: Option<[wgpu::ComputePipeline; 2]>,
}

impl StepPipelines {
    /// `reset_n`: whether the module has the second dispatch's entry point.
    fn new(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        source: StepSource,
        (reset_n, shuffle_lanes): (bool, u32),
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(source.stem),
            source: wgpu::ShaderSource::Wgsl(source.module(shuffle_lanes).into()),
        });
        StepPipelines {
            quads: QuadPipelines::new((device, layout), (source.stem, "step_quads"), move |rows| {
                source.quads_module(rows)
            }),
            gemv: pipeline(device, layout, &module, "step_gemv"),
            tiled: pipeline(device, layout, &module, "step_tiled"),
            units: pipeline(device, layout, &module, "step_units"),
            rows: pipeline(device, layout, &module, "step_rows"),
            reset_n: reset_n.then(|| {
                ["step_reset_n", "step_reset_n_rows"].map(|e| pipeline(device, layout, &module, e))
            }),
        }
    }
}

/// The forms of one cell's backward step: `recurrent_step_backward.wgsl`'s two entry
/// points and the written-out `step_backward_quads`.
pub(crate) struct BackwardPipelines {
    /// Tiled, workgroup memory.
    pub main: wgpu::ComputePipeline,
    /// Barrier-free, for software adapters.
    pub rows: wgpu::ComputePipeline,
    /// `step_backward_quads`, per batch row count (software adapters, H % 4 == 0).
    pub quads: QuadPipelines,
    /// `GruResetBefore`'s second dispatch of each step, `main_reset_n`.
    pub reset_n: Option<wgpu::ComputePipeline>,
}

impl BackwardPipelines {
    fn new(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        source: BackwardSource,
        reset_n: bool,
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(source.stem),
            source: wgpu::ShaderSource::Wgsl(source.module().into()),
        });
        BackwardPipelines {
            quads: QuadPipelines::new(
                (device, layout),
                (source.stem, "step_backward_quads"),
                move |rows| source.quads_module(rows),
            ),
            main: pipeline(device, layout, &module, "main"),
            rows: pipeline(device, layout, &module, "main_rows"),
            reset_n: reset_n.then(|| pipeline(device, layout, &module, "main_reset_n")),
        }
    }
}

/// Each kernel's bindings, one letter per binding (see [`layout`]).
const BINDINGS: [(&str, &str); 6] = [
    ("matmul", "u r r r w"),
    // lstm_step_f16 and the GRU steps bind the same.
    ("lstm_step", "u d r r r r w w w w"),
    ("lstm_step_backward", "u d r r r r r r w w"),
    ("lstm_param_grads", "u r r r w w"),
    ("softmax_xent", "u r r r w w"),
    ("optimizer_update", "u r w w w w"),
];

/// Checks that every kernel's bindings fit the device's limits; the error names the
/// kernel and the limit (instead of a validation error from deep inside wgpu).
pub(crate) fn check_limits(limits: &wgpu::Limits) -> crate::Result<()> {
    for (stem, kinds) in BINDINGS {
        let count = |set: &str| kinds.split_whitespace().filter(|k| set.contains(k)).count() as u32;
        let needs = [
            (
                "max_storage_buffers_per_shader_stage",
                count("rw"),
                limits.max_storage_buffers_per_shader_stage,
            ),
            (
                "max_uniform_buffers_per_shader_stage",
                count("ud"),
                limits.max_uniform_buffers_per_shader_stage,
            ),
            (
                "max_dynamic_uniform_buffers_per_pipeline_layout",
                count("d"),
                limits.max_dynamic_uniform_buffers_per_pipeline_layout,
            ),
        ];
        for (limit, need, has) in needs {
            if need > has {
                return Err(crate::LstmError::DeviceLimit(format!(
                    "kernel {stem} binds {need} buffers of a kind the device limits to {has} ({limit})"
                )));
            }
        }
    }
    Ok(())
}

impl Kernels {
    /// `matmul_quads.wgsl`'s form `form` (software adapters; see `matmul_quads::form_for`).
    pub fn matmul_quads(&self, form: matmul_quads::QuadForm) -> &wgpu::ComputePipeline {
        let forms = self.matmul_quads.get_or_init(|| {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("matmul_quads"),
                    source: wgpu::ShaderSource::Wgsl(matmul_quads_module().into()),
                });
            matmul_quads::QuadForm::ALL
                .map(|f| pipeline(&self.device, &self.matmul_layout, &module, f.entry()))
        });
        let at = matmul_quads::QuadForm::ALL.iter().position(|&f| f == form);
        &forms[at.unwrap_or(0)]
    }

    /// The step kernels of a cell: `lstm_step` or `gru_step` (compiled here on first use).
    pub fn step_of(&self, cell: Cell) -> &StepPipelines {
        let lanes = self.shuffle_lanes;
        match cell {
            Cell::Lstm => &self.step,
            Cell::Gru => self.gru_step.get_or_init(|| {
                StepPipelines::new(&self.device, &self.step_layout, GRU_STEP, (false, lanes))
            }),
            Cell::GruResetBefore => self.gru_reset_before_step.get_or_init(|| {
                let src = GRU_RESET_BEFORE_STEP;
                StepPipelines::new(&self.device, &self.step_layout, src, (true, lanes))
            }),
            Cell::LstmF16 => self.step_f16.get_or_init(|| {
                StepPipelines::new(
                    &self.device,
                    &self.step_layout,
                    LSTM_STEP_F16,
                    (false, lanes),
                )
            }),
        }
    }

    /// The backward step kernels of a cell (`gru_step_backward` compiled here on first use).
    pub fn backward_of(&self, cell: Cell) -> &BackwardPipelines {
        match cell {
            // An f16 model never trains (GpuLstm::forward_backward refuses it).
            Cell::Lstm | Cell::LstmF16 => &self.step_backward,
            Cell::Gru => self.gru_step_backward.get_or_init(|| {
                BackwardPipelines::new(
                    &self.device,
                    &self.backward_layout,
                    GRU_STEP_BACKWARD,
                    false,
                )
            }),
            Cell::GruResetBefore => self.gru_reset_before_step_backward.get_or_init(|| {
                BackwardPipelines::new(
                    &self.device,
                    &self.backward_layout,
                    GRU_RESET_BEFORE_STEP_BACKWARD,
                    true,
                )
            }),
        }
    }

    /// `shuffle_lanes`: see [`crate::GpuContext::shuffle_lanes`].
    pub fn new(device: &wgpu::Device, shuffle_lanes: u32) -> Kernels {
        let layout_of = |stem: &str| {
            let kinds = BINDINGS
                .iter()
                .find(|(s, _)| *s == stem)
                .map_or("", |(_, k)| k);
            layout(device, stem, kinds)
        };
        let matmul_layout = layout_of("matmul");
        let step_layout = layout_of("lstm_step");
        let backward_layout = layout_of("lstm_step_backward");
        let grads_layout = layout_of("lstm_param_grads");
        let xent_layout = layout_of("softmax_xent");
        let opt_layout = layout_of("optimizer_update");
        let module = |label, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            })
        };
        let matmul_module = module("matmul", MATMUL);
        let grads_module = module("lstm_param_grads", LSTM_PARAM_GRADS);
        let xent_module = module("softmax_xent", SOFTMAX_XENT);
        let opt_module = module("optimizer_update", OPTIMIZER_UPDATE);
        Kernels {
            matmul: pipeline(device, &matmul_layout, &matmul_module, "main"),
            matmul_rows: pipeline(device, &matmul_layout, &matmul_module, "main_rows"),
            matmul_sum_splits: pipeline(device, &matmul_layout, &matmul_module, "sum_splits"),
            matmul_quads: std::sync::OnceLock::new(),
            step: StepPipelines::new(device, &step_layout, LSTM_STEP, (false, shuffle_lanes)),
            shuffle_lanes,
            gru_step: std::sync::OnceLock::new(),
            gru_reset_before_step: std::sync::OnceLock::new(),
            step_f16: std::sync::OnceLock::new(),
            device: device.clone(),
            matmul_layout,
            step_backward: BackwardPipelines::new(
                device,
                &backward_layout,
                LSTM_STEP_BACKWARD,
                false,
            ),
            gru_step_backward: std::sync::OnceLock::new(),
            gru_reset_before_step_backward: std::sync::OnceLock::new(),
            param_grads: pipeline(device, &grads_layout, &grads_module, "main"),
            param_grads_sum: pipeline(device, &grads_layout, &grads_module, "sum_slices"),
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

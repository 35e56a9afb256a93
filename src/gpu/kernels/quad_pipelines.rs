//! The lazily compiled `step_quads` pipelines of one cell (`shaders/step_quads.wgsl`,
//! its entry point written by [`super::step_quads`] for each row count).

use std::sync::OnceLock;

use super::pipelines::pipeline;
use super::sources::StepSource;
use super::step_quads::{quad_rows, QUAD_ROWS};

/// One cell's `step_quads` pipelines, one per row count, each compiled on first use.
pub(crate) struct QuadPipelines {
    device: wgpu::Device,
    layout: wgpu::BindGroupLayout,
    source: StepSource,
    compiled: [OnceLock<wgpu::ComputePipeline>; QUAD_ROWS.len()],
}

impl QuadPipelines {
    pub fn new(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, source: StepSource) -> Self {
        QuadPipelines {
            device: device.clone(),
            layout: layout.clone(),
            source,
            compiled: Default::default(),
        }
    }

    /// The pipeline for a batch of `batch` (see [`quad_rows`]).
    pub fn for_batch(&self, batch: usize) -> &wgpu::ComputePipeline {
        let rows = quad_rows(batch);
        let slot = QUAD_ROWS.iter().position(|&r| r == rows).unwrap_or(0);
        self.compiled[slot].get_or_init(|| {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(self.source.stem),
                    source: wgpu::ShaderSource::Wgsl(self.source.quads_module(rows).into()),
                });
            pipeline(&self.device, &self.layout, &module, "step_quads")
        })
    }
}

//! The lazily compiled written-out step pipelines of one cell (`step_quads` forward,
//! `step_backward_quads` backward), one per batch row count: each module is generated
//! for its row count ([`super::step_quads`], [`super::step_backward_quads`]).

use std::sync::OnceLock;

use super::pipelines::pipeline;
use super::step_quads::{quad_slot, QUAD_ROWS};

/// A module's source for a row count.
type ModuleFor = Box<dyn Fn(u32) -> String + Send + Sync>;

/// One cell's written-out pipelines, one per row count, each compiled on first use.
pub(crate) struct QuadPipelines {
    device: wgpu::Device,
    layout: wgpu::BindGroupLayout,
    /// The module's label and entry point.
    names: (&'static str, &'static str),
    module: ModuleFor,
    compiled: [OnceLock<wgpu::ComputePipeline>; QUAD_ROWS.len()],
}

impl QuadPipelines {
    pub fn new(
        (device, layout): (&wgpu::Device, &wgpu::BindGroupLayout),
        names: (&'static str, &'static str),
        module: impl Fn(u32) -> String + Send + Sync + 'static,
    ) -> Self {
        QuadPipelines {
            device: device.clone(),
            layout: layout.clone(),
            names,
            module: Box::new(module),
            compiled: Default::default(),
        }
    }

    /// The pipeline for a batch of `batch` (see [`super::step_quads::quad_rows`]).
    pub fn for_batch(&self, batch: usize) -> &wgpu::ComputePipeline {
        let slot = quad_slot(batch);
        self.compiled[slot].get_or_init(|| {
            let source = (self.module)(QUAD_ROWS[slot]);
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(self.names.0),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
            pipeline(&self.device, &self.layout, &module, self.names.1)
        })
    }
}

//! The lazily compiled written-out step pipelines of one cell (`step_quads` forward,
//! `step_backward_quads` backward), one per batch row count: each module is generated
//! for its row count ([`super::step_quads`], [`super::step_backward_quads`]).

use std::sync::OnceLock;

use super::pipelines::pipeline;
use super::sources::{BackwardSource, StepSource};
use super::step_quads::{quad_rows, QUAD_ROWS};

/// Which module a [`QuadPipelines`] compiles.
#[derive(Clone, Copy, Debug)]
pub(crate) enum QuadSource {
    Step(StepSource),
    Backward(BackwardSource),
}

impl QuadSource {
    fn stem(&self) -> &'static str {
        match self {
            QuadSource::Step(s) => s.stem,
            QuadSource::Backward(s) => s.stem,
        }
    }

    fn module(&self, rows: u32) -> String {
        match self {
            QuadSource::Step(s) => s.quads_module(rows),
            QuadSource::Backward(s) => s.quads_module(rows),
        }
    }

    fn entry(&self) -> &'static str {
        match self {
            QuadSource::Step(_) => "step_quads",
            QuadSource::Backward(_) => "step_backward_quads",
        }
    }
}

/// One cell's written-out pipelines, one per row count, each compiled on first use.
pub(crate) struct QuadPipelines {
    device: wgpu::Device,
    layout: wgpu::BindGroupLayout,
    source: QuadSource,
    compiled: [OnceLock<wgpu::ComputePipeline>; QUAD_ROWS.len()],
}

impl QuadPipelines {
    pub fn new(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, source: QuadSource) -> Self {
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
            let source = self.source.module(rows);
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(self.source.stem()),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
            pipeline(&self.device, &self.layout, &module, self.source.entry())
        })
    }
}

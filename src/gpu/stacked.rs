//! Both directions of a bidirectional layer stacked for one dispatch per time step
//! (`forward/both_directions.rs` binds them): whether a forward does that, and the
//! layer's weights stacked direction after direction.

use super::buffers::new_storage;
use super::context::GpuContext;
use super::plan::ChunkPlan;
use super::weights::{GpuWeights, LayerBuffers};

/// Whether an inference forward of `plan` at batch `b` steps both directions of each
/// layer in one dispatch: a bidirectional forward of one chunk whose stacked buffers
/// (twice a direction's `gx`, `w_ih`, `w_rec` and gate cache) fit the device's binding
/// limit. A training forward asks [`backward_fuses_directions`].
pub(crate) fn fuses_directions(
    ctx: &GpuContext,
    w: &GpuWeights,
    (plan, b): (&ChunkPlan, usize),
) -> bool {
    let cfg = &w.config;
    let h = cfg.hidden_size;
    let widest_input = (0..cfg.num_layers).map(|l| cfg.layer_input_size(l)).max();
    let floats = [
        plan.len * b,
        widest_input.unwrap_or(0),
        cfg.recurrent_width(),
    ];
    let fits = floats
        .iter()
        .all(|&f| 2 * 4 * 4 * (f * h) as u64 <= ctx.max_binding_bytes());
    cfg.num_directions() == 2 && plan.count == 1 && fits
}

/// Whether a training forward and its backward step both directions per dispatch: where
/// [`fuses_directions`] says so and the two directions' `dz` blocks (each the plan's rows
/// and a boundary row, `backward_job.rs`) fit the binding limit as well. The backward
/// reads the forward's cache in direction blocks, so the two decide together.
pub(crate) fn backward_fuses_directions(
    ctx: &GpuContext,
    w: &GpuWeights,
    (plan, b): (&ChunkPlan, usize),
) -> bool {
    let dz_bytes = 2 * 4 * 4 * ((plan.len + 1) * b * w.config.hidden_size) as u64;
    fuses_directions(ctx, w, (plan, b)) && dz_bytes <= ctx.max_binding_bytes()
}

/// The entries of one direction's block of a stacked training cache (`gates` in vec4,
/// `prev` in pairs of f32; `train_cache.rs`): `StepParams::cache_stride`,
/// `BackwardParams::cache_stride`, and where direction 1's weight gradients read it.
pub(crate) fn stacked_cache_stride(plan: &ChunkPlan, b: usize, h: usize) -> u32 {
    (plan.t * b * h) as u32
}

/// One bidirectional layer's weights stacked direction after direction (`w_ih`
/// `[2·4H, I]`, `bias` `[2·4H]`, `w_rec` `[2][H][4][K]`, `peep` `[2][3H]`), and the
/// per-direction buffers they are copied from at the start of every run: a job sees
/// the weights as they are when it runs (training updates them in place). The
/// backward's steps read the stacked `w_rec` and `peep`; its weight gradients and the
/// optimizer bind each direction's own buffers.
pub(crate) struct StackedLayer {
    pub parts: [wgpu::Buffer; 4],
    sources: [[wgpu::Buffer; 4]; 2],
}

impl StackedLayer {
    pub fn new(ctx: &GpuContext, directions: [&LayerBuffers; 2]) -> StackedLayer {
        let each = |w: &LayerBuffers| {
            [
                w.w_ih.clone(),
                w.bias.clone(),
                w.w_rec.clone(),
                w.peep.clone(),
            ]
        };
        let sources = directions.map(each);
        let parts = std::array::from_fn(|i| {
            let floats = (sources[0][i].size() / 4) as usize;
            new_storage(ctx, "stacked weights", 2 * floats, false)
        });
        StackedLayer { parts, sources }
    }

    /// Copies both directions' weights into the stacked buffers.
    pub fn record_copies(&self, encoder: &mut wgpu::CommandEncoder) {
        for (d, source) in self.sources.iter().enumerate() {
            for (part, from) in self.parts.iter().zip(source) {
                let size = from.size();
                encoder.copy_buffer_to_buffer(from, 0, part, d as u64 * size, size);
            }
        }
    }
}

//! Both directions of a bidirectional layer in one dispatch per time step: the job
//! stacks the layer's two weight sets into buffers of its own (`gpu/stacked.rs`), one
//! GEMM projects the input for both (`[T·B, 2·4H]`, the directions side by side in each
//! row), and every step dispatch has a grid z of 2 (`directions.wgsl`'s
//! `enter_direction`), the reverse direction walking the chunk from its end. A layer's
//! steps then take T dispatches instead of 2T, each with twice the workgroups.
//!
//! Only for a forward of one chunk: over several chunks the two directions walk them in
//! opposite orders, and such forwards keep one dispatch per layer-direction and step. A
//! training forward writes its gate cache in direction blocks of one buffer
//! (`train_cache.rs`). The backward reads it so: its steps with both directions per
//! dispatch too (`backward_job.rs`), its weight gradients each direction's block in place.

use super::{ChunkWork, ForwardJob};
use crate::error::Result;
use crate::gpu::buffers::uniform;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::lstm_step::{self, StepBuffers, StepParams};
use crate::gpu::kernels::matmul::{self, MatmulParams};
use crate::gpu::stacked::{stacked_cache_stride, StackedLayer};
use crate::gpu::weights::GpuWeights;

impl ForwardJob {
    /// Layer `l`'s one chunk with both directions per dispatch, reading `input`
    /// (`[T, B, I_l]`) and projecting into `gx` (`[T][B][2][4H]`); the stacked weights
    /// go to `self.stacked`.
    pub(super) fn bind_both_directions(
        &mut self,
        ctx: &GpuContext,
        w: &GpuWeights,
        l: usize,
        input: &wgpu::Buffer,
        gx: &wgpu::Buffer,
    ) -> Result<ChunkWork> {
        let cfg = &w.config;
        let (b, h, t) = (self.b, self.hidden, self.plan.t);
        let stacked = StackedLayer::new(ctx, [&w.layers[2 * l], &w.layers[2 * l + 1]]);
        let [w_ih, bias, w_rec, peep] = &stacked.parts;
        // Training: direction 0's cache block, which direction 1's follows in its buffers.
        let (gates, prev) = match self.cache.get(2 * l) {
            Some(blocks) => (&blocks[0].gates, &blocks[0].prev),
            None => (ctx.dummy(), ctx.dummy()),
        };
        // Direction 0's uniforms; the shader adds direction 1's offsets.
        let params = StepParams {
            gx_dirs: 2,
            cache_stride: stacked_cache_stride(&self.plan, b, h),
            ..self.step_params(w, 0..t, 0)
        };
        let step_params = uniform(ctx, "step params", &params);
        let bufs = StepBuffers {
            params: &step_params,
            w_rec,
            peep,
            gx,
            lens: &self.lens,
            state: &self.states[l],
            out: &self.y_sets[self.set_of(l)][0],
            gates,
            prev,
        };
        let proj = MatmulParams::new(t * b, 2 * 4 * h, cfg.layer_input_size(l))
            .b_trans()
            .bias();
        let work = ChunkWork {
            projection: matmul::prepare(ctx, proj, input, w_ih, Some(bias), gx),
            steps: lstm_step::bind(ctx, &self.index, &bufs)?,
            range: 0..t,
            reverse: false,
            directions: 2,
            first: true,
        };
        self.stacked.push(stacked);
        Ok(work)
    }
}

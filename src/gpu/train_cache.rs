//! What a training forward keeps for its backward: per layer-direction and chunk, the
//! gate cache the steps write ([`CacheBlock`]), with a bidirectional layer's two
//! directions in blocks of one buffer where they step in one dispatch.

use super::buffers::new_storage;
use super::context::GpuContext;
use super::plan::ChunkPlan;
use super::stacked::stacked_cache_stride;

/// One layer-direction's training cache over one chunk: `gates` `[Tc][B][H]` vec4 of
/// gate activations (i, f, g, o; 0 past a length) and `prev` `[Tc][B][2H]` (`h_{t-1}`
/// then `c_{t-1}`), starting at entry `at` (entries of one unit of one row: a vec4 of
/// `gates`, a pair of `prev`). `at` is 0 except for direction 1 of a layer whose two
/// directions step in one dispatch: they share one cache in direction blocks
/// (`stacked_cache_stride` entries apart), which its weight gradients read in place.
#[derive(Clone)]
pub(crate) struct CacheBlock {
    pub gates: wgpu::Buffer,
    pub prev: wgpu::Buffer,
    pub at: usize,
}

/// What the training forward keeps for backward, per chunk of its plan.
pub(crate) struct TrainCache {
    /// Per layer, per chunk: its input `[Tc, B, I_l]` time-major (`x` for layer 0, then
    /// the outputs below).
    pub layer_inputs: Vec<Vec<wgpu::Buffer>>,
    /// Per layer-direction, per chunk: its gate cache.
    pub blocks: Vec<Vec<CacheBlock>>,
    /// `[B]` u32 sequence lengths.
    pub lens: wgpu::Buffer,
    pub plan: ChunkPlan,
    pub b: usize,
    /// Both directions per dispatch: per layer, its stacked `w_rec` and `peep` (its
    /// cache: direction 0's block, which holds direction 1's after it); empty otherwise.
    pub stacked: Vec<[wgpu::Buffer; 2]>,
}

/// The training cache of a forward over `plan` at batch `b`, per layer-direction and
/// chunk: a buffer pair each, or with `both` directions per dispatch one pair per layer
/// holding direction 1's block `stacked_cache_stride` entries after direction 0's.
/// `poison`: the buffers start as NaN.
pub(crate) fn train_cache_blocks(
    ctx: &GpuContext,
    (layers, dirs): (usize, usize),
    (plan, b, h): (&ChunkPlan, usize, usize),
    both: bool,
    poison: bool,
) -> Vec<Vec<CacheBlock>> {
    let bh = b * h;
    let pair = |rows: usize, blocks: usize| CacheBlock {
        gates: new_storage(ctx, "gates", blocks * rows * 4 * bh, poison),
        prev: new_storage(ctx, "prev", blocks * rows * 2 * bh, poison),
        at: 0,
    };
    if both {
        let stride = stacked_cache_stride(plan, b, h) as usize;
        let layer = |_| {
            let first = pair(plan.t, 2);
            let second = CacheBlock {
                at: stride,
                ..first.clone()
            };
            [vec![first], vec![second]]
        };
        return (0..layers).flat_map(layer).collect();
    }
    let chunks = || plan.ranges().map(|r| pair(r.len(), 1)).collect();
    (0..layers * dirs).map(|_| chunks()).collect()
}

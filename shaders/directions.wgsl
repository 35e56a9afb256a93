// directions.wgsl — which direction of a bidirectional layer a workgroup steps, and
// where that direction's blocks lie in the buffers the forward step
// (recurrent_step.wgsl) and the backward step (recurrent_step_backward.wgsl) both bind:
// `peep` and the training cache (`gates`, `prev`). Compiled into both modules, which
// declare `p` (with `hidden` and `cache_stride`), `peep`, `gates` and `prev`.
//
// A dispatch of one layer-direction has a grid z of 1 and every buffer its own
// (dir = 0). A dispatch of both directions of a bidirectional layer of one chunk has a
// grid z of 2 and binds buffers that hold the directions one after the other (`w_rec`
// [2][H][4][K], `peep` [2][H][3], `gates` and `prev` in blocks of p.cache_stride
// entries); each module says how its other buffers and its time index take the
// direction. Every entry point calls `enter_direction` first.
var<private> dir: u32;

fn enter_direction(wg: vec3<u32>) {
    dir = wg.z;
}

// Where unit j of cache row `row` (local step · B + batch row) is in `gates`, and its
// h_{t-1} in `prev` (the second value, c_{t-1} or r ⊙ h, is H further).
fn gates_index(row: u32, j: u32) -> u32 {
    return dir * p.cache_stride + row * p.hidden + j;
}

fn prev_index(row: u32, j: u32) -> u32 {
    return 2u * (dir * p.cache_stride + row * p.hidden) + j;
}

// Diagonal peephole g (0 i, 1 f, 2 o) of unit j.
fn peep_at(j: u32, g: u32) -> f32 {
    return peep[3u * (dir * p.hidden + j) + g];
}

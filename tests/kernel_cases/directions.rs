//! `directions.wgsl` (see tests/kernels.rs): the blocks of the stacked `peep`, `gates`
//! and `prev` that a step of both directions of a bidirectional layer reads and writes,
//! forward and backward. It has no dispatch of its own, so its cases run the one-chunk
//! bidirectional training job (every step dispatch with grid z = 2, checked through
//! `dispatch_plan`) in each kernel form and peephole mode, at awkward shapes, against
//! the CPU: direction 1's cache in the wrong block, or its peepholes read from
//! direction 0's, would change its outputs and gradients. Outputs start as NaN.

use crate::common::*;
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::{ForwardOptions, GpuLstm, LstmConfig, LstmWeights, Peephole};

/// (I, H, T, B): one unit, one step, one row; H off every tile; B past a tile's rows.
const SHAPES: [(usize, usize, usize, usize); 3] = [(1, 1, 1, 1), (3, 17, 4, 1), (2, 5, 3, 18)];

pub fn directions_cases() {
    for software in [false, true] {
        let Some(mut ctx) = try_context() else { return };
        ctx.set_software_kernels(software);
        let ctx = std::sync::Arc::new(ctx);
        for (n, &(i, h, t, b)) in SHAPES.iter().enumerate() {
            for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
                let cfg = LstmConfig::new(i, h).bidirectional(true).peephole(peephole);
                let tag = format!("I={i} H={h} T={t} B={b} {peephole:?} software {software}");
                both_directions_case(&ctx, &cfg, (t, b), 760 + 10 * n as u64, &tag);
            }
        }
    }
}

/// One bidirectional layer's forward and BPTT with both directions per dispatch, from a
/// random initial state, with lengths (B > 1) and `dy`, against the CPU path.
fn both_directions_case(
    ctx: &std::sync::Arc<lstm_wgpu::GpuContext>,
    cfg: &LstmConfig,
    (t, b): (usize, usize),
    seed: u64,
    tag: &str,
) {
    let w = LstmWeights::init(cfg, seed).unwrap();
    let x = random_input(cfg, t, b, seed + 1);
    let init = random_state(cfg, b, seed + 2);
    let lens: Vec<usize> = (0..b).map(|r| 1 + (r * 2) % t).collect();
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let dy = random((t, b, 2 * cfg.hidden_size), seed + 3);
    let up = Upstream {
        dy: Some(dy.view()),
        ..Default::default()
    };
    let (want_out, cache) = cpu::forward_train(&w, x.view(), opts).unwrap();
    let want = cpu::backward(&w, &cache, up).unwrap();
    let mut gpu = GpuLstm::new(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    let plan = gpu.dispatch_plan(t, b).unwrap();
    let launches = (plan.step_directions, plan.backward_step_dispatches);
    assert_eq!(launches, (2, t + 1), "{tag}: {plan:?}");
    let (out, got) = gpu.forward_backward(x.view(), opts, up).unwrap();
    assert_output_close(tag, &out, &want_out);
    assert_gradients_close(tag, &got, &want);
}

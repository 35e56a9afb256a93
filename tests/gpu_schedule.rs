//! The GPU forward's schedule: both directions of a bidirectional layer in one dispatch
//! per step (inference and training), and a direction's first step from a zero state —
//! each against the path it replaces, bit for bit, and against the CPU path.

mod common;

use common::*;
use lstm_wgpu::cpu::backward::{Gradients, Upstream};
use lstm_wgpu::cpu::gru_backward::GruUpstream;
use lstm_wgpu::{
    cpu, ForwardOptions, GpuGru, GpuLstm, GruConfig, GruOptions, GruWeights, LstmConfig,
    LstmOutput, LstmWeights, Peephole, StepTiling,
};

/// A bidirectional forward of one chunk steps both directions of a layer in one
/// dispatch (grid z = 2: half the step dispatches); on a device whose binding limit
/// holds one direction's projection but not the two stacked, it steps them one at a
/// time. Every tiling gives the CPU's values and the same bits either way.
#[test]
fn both_directions_in_one_dispatch() {
    let (Some(wide), Some(mut narrow)) = (try_context(), try_context()) else {
        return;
    };
    let (t, b, h) = (17, 3, 6);
    let cfg = LstmConfig::new(5, h)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    narrow.set_max_binding_bytes((4 * t * b * 4 * h) as u64);
    let w = LstmWeights::init(&cfg, 710).unwrap();
    let x = random_input(&cfg, t, b, 711);
    let init = random_state(&cfg, b, 712);
    let lens = [17, 6, 11];
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let want = cpu::forward(&w, x.view(), opts).unwrap();
    let bits = |a: &ndarray::ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut runs: Vec<Vec<Vec<u32>>> = Vec::new();
    for (ctx, dirs, dispatches) in [(wide, 2, 2 * (1 + t)), (narrow, 1, 4 * (1 + t))] {
        let mut gpu = GpuLstm::new(std::sync::Arc::new(ctx), &w).unwrap();
        gpu.set_poison_outputs(true);
        let plan = gpu.dispatch_plan(t, b).unwrap();
        let launches = (plan.chunks, plan.step_directions, plan.dispatches);
        assert_eq!(launches, (1, dirs, dispatches), "{plan:?}");
        let mut run = Vec::new();
        for tiling in StepTiling::ALL {
            gpu.set_tiling(tiling);
            let got = gpu.forward(x.view(), opts).unwrap();
            let tag = format!("{tiling:?}, {dirs} direction(s) per dispatch");
            assert_output_close(&tag, &got, &want);
            let outs = [got.y.into_dyn(), got.h_n.into_dyn(), got.c_n.into_dyn()];
            run.extend(outs.iter().map(bits));
        }
        runs.push(run);
    }
    assert!(
        runs[0] == runs[1],
        "one dispatch per direction changed the bits"
    );
}

/// A bidirectional training job of one chunk steps both directions per dispatch, in
/// the forward (its gate cache in direction blocks of one buffer) and in the backward
/// (grid z = 2 over the stacked weights and cache, `dz` and the carries in direction
/// blocks; direction 1's weight gradients read its blocks in place). The gradients
/// have the bits of one direction per dispatch (a device whose binding limit holds one
/// direction's cache, not the two; and one that holds the two caches but not two `dz`
/// blocks of T + 1 rows, where inference fuses the directions and training does not)
/// and the CPU's values, in every backward form (`main`, `main_rows`, and the
/// written-out quads at 4 | H) and peephole mode; the reset-before GRU's, the same bits.
#[test]
fn training_steps_both_directions_in_one_dispatch() {
    let (t, b) = (9, 3);
    for (software, h) in [(false, 5), (true, 5), (true, 8)] {
        for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
            training_bits((t, b, h), software, peephole);
        }
    }
    reset_before_gru_training_bits((t, b, 5), (4 * t * b * 4 * 5) as u64);
}

/// [`training_steps_both_directions_in_one_dispatch`]'s LSTM case: one form, one mode.
fn training_bits((t, b, h): (usize, usize, usize), software: bool, peephole: Peephole) {
    let (Some(mut wide), Some(mut mid), Some(mut narrow)) =
        (try_context(), try_context(), try_context())
    else {
        return;
    };
    // Two caches of T·B·4H floats fit `mid`, two dz blocks of (T + 1)·B·4H do not.
    mid.set_max_binding_bytes((2 * 4 * t * b * 4 * h) as u64);
    narrow.set_max_binding_bytes((4 * t * b * 4 * h) as u64);
    let cfg = LstmConfig::new(4, h)
        .layers(2)
        .bidirectional(true)
        .peephole(peephole);
    let w = LstmWeights::init(&cfg, 720).unwrap();
    let x = random_input(&cfg, t, b, 721);
    let init = random_state(&cfg, b, 722);
    let dy = random((t, b, 2 * h), 723);
    let lens = [9, 4, 7];
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let up = Upstream {
        dy: Some(dy.view()),
        ..Default::default()
    };
    let cache = cpu::backward::forward_train(&w, x.view(), opts).unwrap();
    let want = cpu::backward::backward(&w, &cache.1, up).unwrap();
    let mut runs: Vec<Gradients> = Vec::new();
    for ctx in [&mut wide, &mut mid, &mut narrow] {
        ctx.set_software_kernels(software);
    }
    // (context, directions per inference step dispatch, per backward step dispatch)
    for (ctx, dirs, back) in [(wide, 2, 2), (mid, 2, 1), (narrow, 1, 1)] {
        let mut gpu = GpuLstm::new(std::sync::Arc::new(ctx), &w).unwrap();
        gpu.set_poison_outputs(true);
        let plan = gpu.dispatch_plan(t, b).unwrap();
        let backward = 2 * (2 / back) * (t + 1); // two layers
        let launches = (plan.step_directions, plan.backward_step_dispatches);
        assert_eq!(launches, (dirs, backward), "{plan:?}");
        let (_, got) = gpu.forward_backward(x.view(), opts, up).unwrap();
        let tag = format!("{dirs}/{back} directions per forward/backward dispatch, H = {h}, {peephole:?}, software {software}");
        assert_gradients_close(&tag, &got, &want);
        runs.push(got);
    }
    for other in &runs[1..] {
        assert!(
            runs[0].dx == other.dx && runs[0].params == other.params,
            "one dispatch per direction changed the gradients' bits (H = {h}, {peephole:?}, software {software})"
        );
    }
}

/// The reset-before GRU's training forward (its second dispatch reads back and rewrites
/// the cache it wrote): the same gradient bits with both directions in one dispatch.
fn reset_before_gru_training_bits((t, b, h): (usize, usize, usize), narrow_limit: u64) {
    let (Some(wide), Some(mut narrow)) = (try_context(), try_context()) else {
        return;
    };
    narrow.set_max_binding_bytes(narrow_limit);
    let cfg = GruConfig::new(4, h)
        .layers(2)
        .bidirectional(true)
        .reset_after(false);
    let w = GruWeights::init(&cfg, 730).unwrap();
    let x = random((t, b, 4), 731);
    let dy = random((t, b, 2 * h), 732);
    let up = GruUpstream {
        dy: Some(dy.view()),
        ..Default::default()
    };
    let grads: Vec<_> = [wide, narrow]
        .into_iter()
        .map(|ctx| {
            let mut gpu = GpuGru::new(std::sync::Arc::new(ctx), &w).unwrap();
            gpu.set_poison_outputs(true);
            let (_, g) = gpu
                .forward_backward(x.view(), GruOptions::default(), up)
                .unwrap();
            assert!(g.dx.iter().all(|v| v.is_finite()), "GRU dx not finite");
            g
        })
        .collect();
    assert!(
        grads[0].dx == grads[1].dx && grads[0].params == grads[1].params,
        "one dispatch per direction changed the reset-before GRU's gradients' bits"
    );
}

/// Without an initial state each direction's first step skips its recurrent products
/// (all +0 from a zero state); given zeros explicitly, it runs them. The bits are the
/// same in every tiling and peephole mode (Full reads `c` in the product too), with both
/// directions in one dispatch and, on a device whose binding limit cuts T = 8 into
/// chunks of 3, 3 and 2, with one direction per dispatch (the reverse one starts at the
/// last chunk's second step).
#[test]
fn a_forward_from_zeros_gives_the_bits_of_an_explicit_zero_state() {
    let (Some(one_chunk), Some(mut chunked)) = (try_context(), try_context()) else {
        return;
    };
    let (t, b, h) = (8, 3, 4);
    // The widest per-step row is 4H · B floats: three steps a chunk.
    chunked.set_max_binding_bytes((3 * 4 * 4 * h * b) as u64);
    for (ctx, want_chunks) in [(one_chunk, 1), (chunked, 3)] {
        let ctx = std::sync::Arc::new(ctx);
        for (n, peephole) in [Peephole::None, Peephole::Diagonal, Peephole::Full]
            .into_iter()
            .enumerate()
        {
            let cfg = LstmConfig::new(4, h)
                .layers(2)
                .bidirectional(true)
                .peephole(peephole);
            let w = LstmWeights::init(&cfg, 720 + n as u64).unwrap();
            let x = random_input(&cfg, t, b, 730 + n as u64);
            let mut gpu = GpuLstm::new(ctx.clone(), &w).unwrap();
            gpu.set_poison_outputs(true);
            let chunks = gpu.dispatch_plan(t, b).unwrap().chunks;
            assert_eq!(chunks, want_chunks);
            let tag = format!("{peephole:?}, {chunks} chunk(s)");
            same_bits_from_zeros(&mut gpu, &cfg, x.view(), &tag);
        }
    }
}

/// A forward without an initial state and one from explicit zeros, in every tiling.
fn same_bits_from_zeros(
    gpu: &mut GpuLstm,
    cfg: &LstmConfig,
    x: ndarray::ArrayView3<f32>,
    tag: &str,
) {
    let b = x.dim().1;
    let shape = (cfg.num_layers * cfg.num_directions(), b, cfg.hidden_size);
    let zeros = lstm_wgpu::LstmState {
        h: ndarray::Array3::zeros(shape),
        c: ndarray::Array3::zeros(shape),
    };
    let explicit = ForwardOptions {
        initial: Some(&zeros),
        seq_lens: Some(&[8, 2, 5]),
    };
    let implicit = ForwardOptions {
        initial: None,
        ..explicit
    };
    let bits = |o: &LstmOutput| {
        let all = o.y.iter().chain(&o.h_n).chain(&o.c_n);
        all.map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    for tiling in StepTiling::ALL {
        gpu.set_tiling(tiling);
        let [a, b] = [implicit, explicit].map(|o| gpu.forward(x, o).unwrap());
        assert!(bits(&a) == bits(&b), "{tag} {tiling:?}");
    }
}

//! Property tests over random configurations: T, B, I, H (1 and sizes off every tile),
//! layers, bidirectional, every peephole mode, bias on/off, batch-first, sequence
//! lengths (1 included). For each: the GPU forward and BPTT equal the CPU path within the
//! declared tolerances; a sequence run in chunks (a lowered binding limit) equals the
//! whole; weights exported as a PyTorch state dict and imported again are bit-identical.
//! A failure is shrunk to a small case: add that case to a regular test.

mod common;

use common::{
    assert_close, random, random_input, shared_context, GPU_ATOL, GPU_RTOL, GRAD_ATOL, GRAD_RTOL,
};
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::interop::{tensors::TensorMap, torch};
use lstm_wgpu::{ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmWeights, Peephole};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    cfg: LstmConfig,
    t: usize,
    b: usize,
    lens: Option<Vec<usize>>,
    seed: u64,
}

fn peephole() -> impl Strategy<Value = Peephole> {
    prop_oneof![
        Just(Peephole::None),
        Just(Peephole::Diagonal),
        Just(Peephole::Full)
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let shape = (1usize..7, 1usize..6, 1usize..12, 1usize..40, 1usize..3);
    let flags = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        peephole(),
        any::<bool>(),
    );
    (shape, flags, any::<u64>()).prop_flat_map(
        |((t, b, i, h, layers), (bidir, bias, batch_first, peep, lens), seed)| {
            let cfg = LstmConfig::new(i, h)
                .layers(layers)
                .bidirectional(bidir)
                .bias(bias)
                .batch_first(batch_first)
                .peephole(peep);
            let lens = if lens {
                proptest::collection::vec(1..=t, b).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            lens.prop_map(move |lens| Case {
                cfg: cfg.clone(),
                t,
                b,
                lens,
                seed,
            })
        },
    )
}

/// Cases for chunking: long enough sequences, small enough weights that a binding of a
/// few steps still holds them.
fn chunk_case() -> impl Strategy<Value = Case> {
    let shape = (6usize..14, 2usize..6, 1usize..6, 1usize..5, 1usize..3);
    let flags = (any::<bool>(), any::<bool>(), peephole(), any::<bool>());
    (shape, flags, any::<u64>()).prop_flat_map(
        |((t, b, i, h, layers), (bidir, batch_first, peep, lens), seed)| {
            let cfg = LstmConfig::new(i, h)
                .layers(layers)
                .bidirectional(bidir)
                .batch_first(batch_first)
                .peephole(peep);
            let lens = if lens {
                proptest::collection::vec(1..=t, b).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            lens.prop_map(move |lens| Case {
                cfg: cfg.clone(),
                t,
                b,
                lens,
                seed,
            })
        },
    )
}

fn weights(c: &Case) -> LstmWeights {
    LstmWeights::init(&c.cfg, c.seed).unwrap()
}

fn check_forward_and_backward(ctx: std::sync::Arc<GpuContext>, c: &Case) {
    let w = weights(c);
    let x = random_input(&c.cfg, c.t, c.b, c.seed ^ 1);
    let opts = ForwardOptions {
        initial: None,
        seq_lens: c.lens.as_deref(),
    };
    let mut gpu = GpuLstm::new(ctx, &w).unwrap();
    gpu.set_poison_outputs(true);
    let (want, cache) = cpu::forward_train(&w, x.view(), opts).unwrap();
    let got = gpu.forward(x.view(), opts).unwrap();
    assert_close("y", &got.y, &want.y, GPU_ATOL, GPU_RTOL);
    assert_close("h_n", &got.h_n, &want.h_n, GPU_ATOL, GPU_RTOL);
    assert_close("c_n", &got.c_n, &want.c_n, GPU_ATOL, GPU_RTOL);
    let dy = random(want.y.raw_dim(), c.seed ^ 2);
    let up = Upstream {
        dy: Some(dy.view()),
        ..Default::default()
    };
    let want_g = cpu::backward(&w, &cache, up).unwrap();
    let (_, got_g) = gpu.forward_backward(x.view(), opts, up).unwrap();
    assert_close("dx", &got_g.dx, &want_g.dx, GRAD_ATOL, GRAD_RTOL);
    for (l, (g, w)) in got_g
        .params
        .layers
        .iter()
        .zip(&want_g.params.layers)
        .enumerate()
    {
        assert_close(
            &format!("dW_hh[{l}]"),
            &g.w_hh,
            &w.w_hh,
            GRAD_ATOL,
            GRAD_RTOL,
        );
        assert_close(
            &format!("dW_ih[{l}]"),
            &g.w_ih,
            &w.w_ih,
            GRAD_ATOL,
            GRAD_RTOL,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gpu_equals_cpu_forward_and_backward(c in case()) {
        let Some(ctx) = shared_context() else { return Ok(()) };
        check_forward_and_backward(ctx, &c);
    }

    #[test]
    fn chunked_equals_whole(c in chunk_case(), steps_per_chunk in 1usize..4) {
        if shared_context().is_none() { return Ok(()) }
        let w = weights(&c);
        let x = random_input(&c.cfg, c.t, c.b, c.seed ^ 3);
        let opts = ForwardOptions { initial: None, seq_lens: c.lens.as_deref() };
        let whole = cpu::forward(&w, x.view(), opts).unwrap();
        // A binding of `steps_per_chunk` steps of the widest per-row buffer, if the
        // weights fit it; else of the weights (a chunk of more steps, still fewer than T).
        let cfg = &c.cfg;
        let widest = cfg.input_size.max(cfg.output_size()).max(4 * cfg.hidden_size);
        let step_bytes = 4 * c.b * widest;
        let weight_bytes = 16 * cfg.hidden_size * cfg.input_size.max(cfg.output_size()).max(cfg.recurrent_width());
        let binding = (steps_per_chunk * step_bytes).max(weight_bytes);
        prop_assume!(binding / step_bytes < c.t, "one chunk would hold the whole sequence");
        let mut ctx = GpuContext::new().unwrap();
        ctx.set_max_binding_bytes(binding as u64);
        let got = GpuLstm::new(std::sync::Arc::new(ctx), &w).unwrap().forward(x.view(), opts).unwrap();
        assert_close("y (chunked)", &got.y, &whole.y, GPU_ATOL, GPU_RTOL);
        assert_close("h_n (chunked)", &got.h_n, &whole.h_n, GPU_ATOL, GPU_RTOL);
    }

    #[test]
    fn export_then_import_is_bit_identical(c in case()) {
        let mut w = weights(&c);
        let mut map = TensorMap::default();
        torch::to_tensors(&w, "lstm.", &mut map).unwrap();
        let bytes = map.to_safetensors_bytes().unwrap();
        let back = torch::from_tensors(&TensorMap::from_safetensors_bytes(&bytes).unwrap(), "lstm.").unwrap();
        // The file does not say batch_first (PyTorch keeps it on the module, not the state dict).
        w.config.batch_first = back.config.batch_first;
        prop_assert!(back == w, "weights changed through a state dict: {:?}", c.cfg);
    }
}

/// Shrunk from `gpu_equals_cpu_forward_and_backward`: with input size 1 the CPU path's
/// input projection came back column-major and the forward panicked reshaping it.
#[test]
fn input_size_one() {
    let cfg = LstmConfig::new(1, 3).bidirectional(true);
    let c = Case {
        cfg,
        t: 3,
        b: 2,
        lens: None,
        seed: 0,
    };
    let w = weights(&c);
    let x = random_input(&c.cfg, c.t, c.b, 1);
    cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
    if let Some(ctx) = shared_context() {
        check_forward_and_backward(ctx, &c);
    }
}

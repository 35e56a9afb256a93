//! The GPU GRU (`GpuGru`: `gru_step.wgsl`, or `gru_reset_before_step.wgsl` for
//! `reset_after = false`, in the LSTM's schedule) against the CPU path and PyTorch's
//! fixtures: every tiling, NaN-poisoned outputs, awkward shapes, lengths, chunked
//! sequences, gradients; and the inputs it refuses.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use lstm_wgpu::cpu::GruUpstream;
use lstm_wgpu::interop::{tensors::TensorMap, torch_gru};
use lstm_wgpu::{cpu, GpuGru, GruConfig, GruOptions, GruWeights, StepTiling};
use ndarray::{Array3, Ix3};

/// Every tiling of the GPU forward against the CPU forward on one configuration.
fn compare(
    ctx: &Arc<lstm_wgpu::GpuContext>,
    cfg: GruConfig,
    t: usize,
    b: usize,
    lens: Option<&[usize]>,
    seed: u64,
) {
    let w = GruWeights::init(&cfg, seed).unwrap();
    let shape_x = if cfg.batch_first {
        (b, t, cfg.input_size)
    } else {
        (t, b, cfg.input_size)
    };
    let x = random(shape_x, seed + 1);
    let h0: Array3<f32> = random(
        (cfg.num_layers * cfg.num_directions(), b, cfg.hidden_size),
        seed + 2,
    );
    let opts = GruOptions {
        initial: Some(&h0),
        seq_lens: lens,
    };
    let want = cpu::gru_forward(&w, x.view(), opts).unwrap();
    let mut gpu = GpuGru::new(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    for tiling in StepTiling::ALL {
        gpu.set_tiling(tiling);
        let got = gpu.forward(x.view(), opts).unwrap();
        let what = format!("{cfg:?} T={t} B={b} {tiling:?}");
        assert_close(&format!("{what} y"), &got.y, &want.y, GPU_ATOL, GPU_RTOL);
        assert_close(
            &format!("{what} h_n"),
            &got.h_n,
            &want.h_n,
            GPU_ATOL,
            GPU_RTOL,
        );
    }
}

#[test]
fn awkward_shapes_match_the_cpu() {
    let Some(ctx) = shared_context() else { return };
    compare(&ctx, GruConfig::new(1, 1), 1, 1, None, 1);
    compare(&ctx, GruConfig::new(3, 17), 5, 1, None, 2);
    compare(&ctx, GruConfig::new(7, 33).bias(false), 3, 19, None, 3);
    // 4 | H: the written-out software form.
    let quads = GruConfig::new(5, 12).layers(2).bidirectional(true);
    compare(&ctx, quads, 4, 6, Some(&[4, 1, 3, 4, 2, 4]), 5);
    compare(
        &ctx,
        GruConfig::new(4, 6)
            .layers(3)
            .bidirectional(true)
            .batch_first(true),
        6,
        5,
        Some(&[6, 1, 4, 2, 5]),
        4,
    );
}

#[test]
fn pytorch_fixtures_on_the_gpu() {
    let Some(ctx) = shared_context() else { return };
    for case in [
        "one_layer_init_state",
        "two_layer_bidir_batch_first",
        "no_bias",
        "var_lengths_bidir",
        "single_step",
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/torch_gru/{case}.safetensors"));
        let f = TensorMap::read_safetensors(&path).unwrap();
        let arr3 = |n: &str| {
            f.tensors
                .get(n)
                .map(|t| t.clone().into_dimensionality::<Ix3>().unwrap())
        };
        let mut w = torch_gru::gru_from_tensors(&f, "").unwrap();
        w.config.batch_first = f.metadata["batch_first"] == "true";
        let lens: Option<Vec<usize>> = f
            .tensors
            .get("lengths")
            .map(|l| l.iter().map(|&v| v as usize).collect());
        let h0 = arr3("h0");
        let opts = GruOptions {
            initial: h0.as_ref(),
            seq_lens: lens.as_deref(),
        };
        let out = GpuGru::new(ctx.clone(), &w)
            .unwrap()
            .forward(arr3("x").unwrap().view(), opts)
            .unwrap();
        assert_close(
            &format!("{case} y"),
            &out.y,
            &arr3("y").unwrap(),
            GPU_ATOL,
            GPU_RTOL,
        );
        assert_close(
            &format!("{case} h_n"),
            &out.h_n,
            &arr3("h_n").unwrap(),
            GPU_ATOL,
            GPU_RTOL,
        );
    }
}

/// A binding limit of a few steps splits the sequence into chunks; h carries across.
#[test]
fn chunked_sequence_matches_the_cpu() {
    let Some(mut ctx) = try_context() else { return };
    // Widest per-step row: 4 slots × H = 6 × B = 3 floats = 288 bytes; allow 4 steps.
    ctx.set_max_binding_bytes(4 * 288);
    compare(
        &Arc::new(ctx),
        GruConfig::new(5, 6).layers(2).bidirectional(true),
        23,
        3,
        Some(&[23, 9, 14]),
        40,
    );
}

/// The reset gate before the product (Keras `reset_after=False`, ONNX
/// `linear_before_reset=0`): two dispatches per step, every tiling of the first.
#[test]
fn reset_before_matches_the_cpu() {
    let Some(ctx) = shared_context() else { return };
    let cfg = |i, h| GruConfig::new(i, h).reset_after(false);
    compare(&ctx, cfg(1, 1), 1, 1, None, 70);
    compare(&ctx, cfg(3, 17), 5, 1, None, 71);
    compare(&ctx, cfg(7, 33).bias(false), 3, 19, None, 72);
    compare(
        &ctx,
        cfg(5, 12).bidirectional(true),
        4,
        6,
        Some(&[4, 1, 3, 4, 2, 4]),
        74,
    );
    let deep = cfg(4, 6).layers(3).bidirectional(true).batch_first(true);
    compare(&ctx, deep, 6, 5, Some(&[6, 1, 4, 2, 5]), 73);
}

/// `reset_after = false` over chunks of 4 steps (see `chunked_sequence_matches_the_cpu`):
/// the forward and the gradients.
#[test]
fn reset_before_chunked_matches_the_cpu() {
    let Some(mut ctx) = try_context() else { return };
    ctx.set_max_binding_bytes(4 * 288);
    let ctx = Arc::new(ctx);
    let cfg = GruConfig::new(5, 6)
        .layers(2)
        .bidirectional(true)
        .reset_after(false);
    compare(&ctx, cfg.clone(), 23, 3, Some(&[23, 9, 14]), 74);
    compare_gradients(&ctx, cfg, 19, 3, Some(&[19, 7, 12]), 75);
}

#[test]
fn reset_before_gradients_match_the_cpu_in_both_kernel_forms() {
    for software in [false, true] {
        let Some(mut ctx) = try_context() else { return };
        ctx.set_software_kernels(software);
        let ctx = Arc::new(ctx);
        let cfg = |i, h| GruConfig::new(i, h).reset_after(false);
        compare_gradients(&ctx, cfg(1, 1), 1, 1, None, 76);
        compare_gradients(&ctx, cfg(3, 17).bias(false), 4, 5, None, 77);
        compare_gradients(&ctx, cfg(2, 33), 3, 2, None, 78);
        let deep = cfg(4, 6).layers(2).bidirectional(true).batch_first(true);
        compare_gradients(&ctx, deep, 6, 3, Some(&[6, 2, 4]), 79);
    }
}

#[test]
fn refused_inputs_are_clear_errors() {
    let Some(ctx) = shared_context() else { return };
    let w = GruWeights::init(&GruConfig::new(3, 4).layers(2), 6).unwrap();
    let gpu = GpuGru::new(ctx, &w).unwrap();
    let bad_h0: Array3<f32> = random((1, 2, 4), 7);
    let opts = GruOptions {
        initial: Some(&bad_h0),
        seq_lens: None,
    };
    let err = gpu
        .forward(random((5, 2, 3), 8).view(), opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("h_0"), "{err}");
}

/// `GpuGru::forward_backward` against `cpu::gru_forward_train` + `cpu::gru_backward`:
/// every parameter gradient, `dx` and `dh_0`.
fn compare_gradients(
    ctx: &Arc<lstm_wgpu::GpuContext>,
    cfg: GruConfig,
    t: usize,
    b: usize,
    lens: Option<&[usize]>,
    seed: u64,
) {
    let w = GruWeights::init(&cfg, seed).unwrap();
    let shape_x = if cfg.batch_first {
        (b, t, cfg.input_size)
    } else {
        (t, b, cfg.input_size)
    };
    let shape_y = (shape_x.0, shape_x.1, cfg.output_size());
    let state = (cfg.num_layers * cfg.num_directions(), b, cfg.hidden_size);
    let (x, h0): (Array3<f32>, Array3<f32>) = (random(shape_x, seed + 1), random(state, seed + 2));
    let (gy, gh): (Array3<f32>, Array3<f32>) = (random(shape_y, seed + 3), random(state, seed + 4));
    let opts = GruOptions {
        initial: Some(&h0),
        seq_lens: lens,
    };
    let up = GruUpstream {
        dy: Some(gy.view()),
        dh_n: Some(gh.view()),
    };
    let (_, cache) = cpu::gru_forward_train(&w, x.view(), opts).unwrap();
    let want = cpu::gru_backward(&w, &cache, up).unwrap();
    let mut gpu = GpuGru::new(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    let (_, got) = gpu.forward_backward(x.view(), opts, up).unwrap();
    assert_gradients_close(&format!("{cfg:?} T={t} B={b}"), &got, &want);
}

/// Every gradient of `got` within the GPU gradient tolerance of `want`.
fn assert_gradients_close(what: &str, got: &cpu::GruGradients, want: &cpu::GruGradients) {
    let close = |name: String, g: &ndarray::ArrayD<f32>, c: &ndarray::ArrayD<f32>| {
        assert_close(&name, g, c, GRAD_ATOL, GRAD_RTOL)
    };
    close(
        format!("{what} dx"),
        &got.dx.clone().into_dyn(),
        &want.dx.clone().into_dyn(),
    );
    close(
        format!("{what} dh0"),
        &got.dh0.clone().into_dyn(),
        &want.dh0.clone().into_dyn(),
    );
    for (k, (g, c)) in got
        .params
        .layers
        .iter()
        .zip(&want.params.layers)
        .enumerate()
    {
        close(
            format!("{what} [{k}] w_ih"),
            &g.w_ih.clone().into_dyn(),
            &c.w_ih.clone().into_dyn(),
        );
        close(
            format!("{what} [{k}] w_hh"),
            &g.w_hh.clone().into_dyn(),
            &c.w_hh.clone().into_dyn(),
        );
        for (name, gb, cb) in [("b_ih", &g.b_ih, &c.b_ih), ("b_hh", &g.b_hh, &c.b_hh)] {
            assert_eq!(gb.is_some(), cb.is_some(), "{what} [{k}] {name}");
            if let (Some(gb), Some(cb)) = (gb, cb) {
                close(
                    format!("{what} [{k}] {name}"),
                    &gb.clone().into_dyn(),
                    &cb.clone().into_dyn(),
                );
            }
        }
    }
}

#[test]
fn gradients_match_the_cpu_in_both_kernel_forms() {
    for software in [false, true] {
        let Some(mut ctx) = try_context() else { return };
        ctx.set_software_kernels(software);
        let ctx = Arc::new(ctx);
        compare_gradients(&ctx, GruConfig::new(1, 1), 1, 1, None, 50);
        compare_gradients(&ctx, GruConfig::new(3, 17).bias(false), 4, 5, None, 51);
        let quads = GruConfig::new(5, 12).bidirectional(true);
        compare_gradients(&ctx, quads, 4, 6, Some(&[4, 1, 3, 4, 2, 4]), 52);
        let before = GruConfig::new(5, 12).reset_after(false);
        compare_gradients(&ctx, before, 4, 6, Some(&[4, 1, 3, 4, 2, 4]), 53);
        compare_gradients(
            &ctx,
            GruConfig::new(4, 6)
                .layers(2)
                .bidirectional(true)
                .batch_first(true),
            6,
            3,
            Some(&[6, 2, 4]),
            52,
        );
    }
}

/// A binding limit of a few steps: the backward runs chunk by chunk too.
#[test]
fn chunked_gradients_match_the_cpu() {
    let Some(mut ctx) = try_context() else { return };
    ctx.set_max_binding_bytes(4 * 288);
    compare_gradients(
        &Arc::new(ctx),
        GruConfig::new(5, 6).layers(2).bidirectional(true),
        19,
        3,
        Some(&[19, 7, 12]),
        60,
    );
}

/// A reset-before GRU's dW_rec is 2 × 4H·H floats: at a binding limit between that and
/// w_rec's 4H·H it is refused at construction, naming the limit, while the same size
/// with the reset gate after the product (one w_rec-sized gradient) is accepted.
#[test]
fn reset_before_gradient_past_the_binding_limit_is_refused() {
    let Some(mut ctx) = try_context() else { return };
    // H = 8: w_rec 4·8·8·4 = 1024 bytes, its gradient here 2048; w_ih (I = 4) 512.
    ctx.set_max_binding_bytes(1536);
    let ctx = Arc::new(ctx);
    let cfg = GruConfig::new(4, 8);
    let after = GruWeights::init(&cfg, 80).unwrap();
    assert!(GpuGru::new(ctx.clone(), &after).is_ok());
    let before = GruWeights::init(&cfg.reset_after(false), 80).unwrap();
    match GpuGru::new(ctx, &before) {
        Err(lstm_wgpu::LstmError::DeviceLimit(msg)) => assert!(
            msg.contains("recurrent gradient")
                && msg.contains("2048")
                && msg.contains("max_storage_buffer_binding_size"),
            "{msg}"
        ),
        Err(e) => panic!("expected a DeviceLimit error, got {e}"),
        Ok(_) => panic!("a 2048-byte dW_rec past a 1536-byte limit must be refused"),
    }
}

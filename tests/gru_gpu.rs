//! The GPU GRU (`GpuGru`: `gru_step.wgsl` in the LSTM's schedule) against the CPU path
//! and PyTorch's fixtures: every tiling, NaN-poisoned outputs, awkward shapes, lengths,
//! chunked sequences; and the forms it refuses.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use lstm_wgpu::cpu::GruUpstream;
use lstm_wgpu::interop::{tensors::TensorMap, torch_gru};
use lstm_wgpu::{cpu, GpuGru, GruConfig, GruOptions, GruWeights, StepTiling};
use ndarray::{Array3, Ix3};

const TILINGS: [StepTiling; 4] = [
    StepTiling::Gemv,
    StepTiling::Tiled,
    StepTiling::Units,
    StepTiling::Rows,
];

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
    for tiling in TILINGS {
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

#[test]
fn refused_forms_are_clear_errors() {
    let Some(ctx) = shared_context() else { return };
    let w = GruWeights::init(&GruConfig::new(3, 4).reset_after(false), 5).unwrap();
    let err = GpuGru::new(ctx.clone(), &w).err().unwrap().to_string();
    assert!(err.contains("reset_after = false"), "{err}");
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
    let what = format!("{cfg:?} T={t} B={b}");
    assert_close(
        &format!("{what} dx"),
        &got.dx,
        &want.dx,
        GRAD_ATOL,
        GRAD_RTOL,
    );
    assert_close(
        &format!("{what} dh0"),
        &got.dh0,
        &want.dh0,
        GRAD_ATOL,
        GRAD_RTOL,
    );
    for (k, (g, c)) in got
        .params
        .layers
        .iter()
        .zip(&want.params.layers)
        .enumerate()
    {
        assert_close(
            &format!("{what} [{k}] w_ih"),
            &g.w_ih,
            &c.w_ih,
            GRAD_ATOL,
            GRAD_RTOL,
        );
        assert_close(
            &format!("{what} [{k}] w_hh"),
            &g.w_hh,
            &c.w_hh,
            GRAD_ATOL,
            GRAD_RTOL,
        );
        for (name, gb, cb) in [("b_ih", &g.b_ih, &c.b_ih), ("b_hh", &g.b_hh, &c.b_hh)] {
            assert_eq!(gb.is_some(), cb.is_some(), "{what} [{k}] {name}");
            if let (Some(gb), Some(cb)) = (gb, cb) {
                assert_close(
                    &format!("{what} [{k}] {name}"),
                    gb,
                    cb,
                    GRAD_ATOL,
                    GRAD_RTOL,
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

//! The GPU LSTMP (`GpuLstmp`: each layer a folded `GpuLstm` over `o ⊙ tanh c`, see
//! `gpu/lstmp_fold.rs`) against the CPU path and PyTorch's fixtures: every tiling,
//! NaN-poisoned outputs, awkward shapes, lengths with and without an initial state,
//! chunked sequences, gradients in both kernel forms.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use lstm_wgpu::cpu::{self, LstmpGradients, Upstream};
use lstm_wgpu::interop::{tensors::TensorMap, torch_lstmp};
use lstm_wgpu::{
    ForwardOptions, GpuContext, GpuLstmp, LstmState, LstmpConfig, LstmpWeights, StepTiling,
};
use ndarray::{Array3, ArrayD, Ix3};

/// A random input, upstream gradient and initial state for `cfg` (caller's layout).
struct Case {
    x: Array3<f32>,
    dy: Array3<f32>,
    dh_n: Array3<f32>,
    dc_n: Array3<f32>,
    init: LstmState,
}

fn case(cfg: &LstmpConfig, t: usize, b: usize, seed: u64) -> Case {
    let seq = |w| {
        if cfg.batch_first {
            (b, t, w)
        } else {
            (t, b, w)
        }
    };
    let ld = cfg.num_layers * cfg.num_directions();
    let (p, h) = (cfg.proj_size, cfg.hidden_size);
    Case {
        x: random(seq(cfg.input_size), seed),
        dy: random(seq(cfg.output_size()), seed + 1),
        dh_n: random((ld, b, p), seed + 2),
        dc_n: random((ld, b, h), seed + 3),
        init: LstmState {
            h: random((ld, b, p), seed + 4),
            c: random((ld, b, h), seed + 5),
        },
    }
}

/// Every tiling of the GPU forward against the CPU forward, with and without `(h_0, c_0)`.
fn compare(ctx: &Arc<GpuContext>, cfg: LstmpConfig, t: usize, b: usize, lens: Option<&[usize]>) {
    let w = LstmpWeights::init(&cfg, t as u64 * 31 + b as u64).unwrap();
    let c = case(&cfg, t, b, 11);
    let mut gpu = GpuLstmp::new(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    for initial in [None, Some(&c.init)] {
        let opts = ForwardOptions {
            initial,
            seq_lens: lens,
        };
        let want = cpu::lstmp_forward(&w, c.x.view(), opts).unwrap();
        for tiling in StepTiling::ALL {
            gpu.set_tiling(tiling);
            let got = gpu.forward(c.x.view(), opts).unwrap();
            let what = format!("{cfg:?} T={t} B={b} {tiling:?} init={}", initial.is_some());
            for (name, g, e) in [
                ("y", &got.y, &want.y),
                ("h_n", &got.h_n, &want.h_n),
                ("c_n", &got.c_n, &want.c_n),
            ] {
                assert_close(&format!("{what} {name}"), g, e, GPU_ATOL, GPU_RTOL);
            }
        }
    }
}

#[test]
fn awkward_shapes_match_the_cpu() {
    let Some(ctx) = shared_context() else { return };
    compare(&ctx, LstmpConfig::new(1, 2, 1), 1, 1, None);
    compare(&ctx, LstmpConfig::new(3, 17, 5), 5, 1, None);
    compare(&ctx, LstmpConfig::new(7, 33, 9).bias(false), 3, 19, None);
    // 4 | H: the written-out software form on the folded layers.
    compare(
        &ctx,
        LstmpConfig::new(5, 12, 4).bidirectional(true),
        4,
        6,
        None,
    );
    let stacked = LstmpConfig::new(4, 6, 3)
        .layers(3)
        .bidirectional(true)
        .batch_first(true);
    compare(&ctx, stacked, 6, 5, Some(&[6, 1, 4, 2, 5]));
}

/// A binding limit of a few steps splits every layer's sequence into chunks.
#[test]
fn chunked_sequence_matches_the_cpu() {
    let Some(mut ctx) = try_context() else { return };
    // Widest per-step row: 4 gates × H = 6 × B = 3 floats = 288 bytes; allow 4 steps.
    ctx.set_max_binding_bytes(4 * 288);
    let ctx = Arc::new(ctx);
    let cfg = LstmpConfig::new(5, 6, 2).layers(2).bidirectional(true);
    compare(&ctx, cfg.clone(), 23, 3, Some(&[23, 9, 14]));
    compare_gradients(&ctx, cfg, 19, 3, Some(&[19, 7, 12]), true);
}

/// `GpuLstmp::forward_backward` against `cpu::lstmp_forward_train` + `lstmp_backward`.
fn compare_gradients(
    ctx: &Arc<GpuContext>,
    cfg: LstmpConfig,
    t: usize,
    b: usize,
    lens: Option<&[usize]>,
    with_init: bool,
) {
    let w = LstmpWeights::init(&cfg, 70 + t as u64).unwrap();
    let c = case(&cfg, t, b, 21);
    let opts = ForwardOptions {
        initial: with_init.then_some(&c.init),
        seq_lens: lens,
    };
    let up = Upstream {
        dy: Some(c.dy.view()),
        dh_n: Some(c.dh_n.view()),
        dc_n: Some(c.dc_n.view()),
    };
    let (want_out, cache) = cpu::lstmp_forward_train(&w, c.x.view(), opts).unwrap();
    let want = cpu::lstmp_backward(&w, &cache, up).unwrap();
    let mut gpu = GpuLstmp::new(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    let (out, got) = gpu.forward_backward(c.x.view(), opts, up).unwrap();
    let what = format!("{cfg:?} T={t} B={b} init={with_init}");
    assert_close(
        &format!("{what} y"),
        &out.y,
        &want_out.y,
        GPU_ATOL,
        GPU_RTOL,
    );
    assert_gradients_close(&what, &got, &want);
}

/// Every gradient of `got` within the GPU gradient tolerance of `want`.
fn assert_gradients_close(what: &str, got: &LstmpGradients, want: &LstmpGradients) {
    let close = |name: String, g: ArrayD<f32>, c: ArrayD<f32>| {
        assert_close(&name, &g, &c, GRAD_ATOL, GRAD_RTOL)
    };
    for (name, g, c) in [
        ("dx", &got.dx, &want.dx),
        ("dh0", &got.dh0, &want.dh0),
        ("dc0", &got.dc0, &want.dc0),
    ] {
        close(
            format!("{what} {name}"),
            g.clone().into_dyn(),
            c.clone().into_dyn(),
        );
    }
    let layers = got.params.layers.iter().zip(&want.params.layers);
    for (k, (g, c)) in layers.enumerate() {
        for (name, gm, cm) in [
            ("w_ih", &g.w_ih, &c.w_ih),
            ("w_hh", &g.w_hh, &c.w_hh),
            ("w_hr", &g.w_hr, &c.w_hr),
        ] {
            close(
                format!("{what} [{k}] {name}"),
                gm.clone().into_dyn(),
                cm.clone().into_dyn(),
            );
        }
        for (name, gb, cb) in [("b_ih", &g.b_ih, &c.b_ih), ("b_hh", &g.b_hh, &c.b_hh)] {
            assert_eq!(gb.is_some(), cb.is_some(), "{what} [{k}] {name}");
            if let (Some(gb), Some(cb)) = (gb, cb) {
                close(
                    format!("{what} [{k}] {name}"),
                    gb.clone().into_dyn(),
                    cb.clone().into_dyn(),
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
        compare_gradients(&ctx, LstmpConfig::new(1, 2, 1), 1, 1, None, true);
        compare_gradients(
            &ctx,
            LstmpConfig::new(3, 17, 4).bias(false),
            4,
            5,
            None,
            false,
        );
        let stacked = LstmpConfig::new(4, 6, 3)
            .layers(2)
            .bidirectional(true)
            .batch_first(true);
        compare_gradients(&ctx, stacked.clone(), 5, 4, Some(&[5, 1, 3, 2]), true);
        compare_gradients(&ctx, stacked, 5, 4, Some(&[2, 5, 5, 4]), false);
    }
}

/// PyTorch's `nn.LSTM(proj_size=P)` outputs and autograd values, on the GPU.
#[test]
fn pytorch_fixtures_on_the_gpu() {
    let Some(ctx) = shared_context() else { return };
    for case in [
        "one_layer_init_state",
        "two_layer_bidir_lengths",
        "batch_first_no_bias",
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/torch_lstmp/{case}.safetensors"));
        let f = TensorMap::read_safetensors(&path).unwrap();
        let arr3 = |n: &str| {
            f.tensors
                .get(n)
                .map(|t| t.clone().into_dimensionality::<Ix3>().unwrap())
        };
        let mut w = torch_lstmp::lstmp_from_tensors(&f, "").unwrap();
        w.config.batch_first = f.metadata["batch_first"] == "true";
        let lens: Option<Vec<usize>> = f
            .tensors
            .get("lengths")
            .map(|l| l.iter().map(|&v| v as usize).collect());
        let init = arr3("h0").map(|h| LstmState {
            h,
            c: arr3("c0").unwrap(),
        });
        let opts = ForwardOptions {
            initial: init.as_ref(),
            seq_lens: lens.as_deref(),
        };
        let (gy, gh, gc) = (
            arr3("gy").unwrap(),
            arr3("gh_n").unwrap(),
            arr3("gc_n").unwrap(),
        );
        let up = Upstream {
            dy: Some(gy.view()),
            dh_n: Some(gh.view()),
            dc_n: Some(gc.view()),
        };
        let gpu = GpuLstmp::new(ctx.clone(), &w).unwrap();
        let x = arr3("x").unwrap();
        let out = gpu.forward(x.view(), opts).unwrap();
        for (name, got) in [("y", &out.y), ("h_n", &out.h_n), ("c_n", &out.c_n)] {
            let want = arr3(name).unwrap();
            assert_close(&format!("{case} {name}"), got, &want, GPU_ATOL, GPU_RTOL);
        }
        let (_, g) = gpu.forward_backward(x.view(), opts, up).unwrap();
        let want = arr3("grad.x").unwrap();
        assert_close(&format!("{case} dx"), &g.dx, &want, GRAD_ATOL, GRAD_RTOL);
        let mut params = g.params;
        params.config.batch_first = false;
        let mut grads = TensorMap::default();
        torch_lstmp::lstmp_to_tensors(&params, "grad.", &mut grads).unwrap();
        for (name, got) in grads.tensors {
            let want = &f.tensors[&name];
            assert_close(&format!("{case} {name}"), &got, want, GRAD_ATOL, GRAD_RTOL);
        }
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let Some(ctx) = shared_context() else { return };
    let w = LstmpWeights::init(&LstmpConfig::new(3, 4, 2).layers(2), 5).unwrap();
    let gpu = GpuLstmp::new(ctx, &w).unwrap();
    let x: Array3<f32> = random((5, 2, 3), 8);
    let bad = LstmState {
        h: random((2, 2, 4), 9), // h_0 is P = 2 wide, not H = 4
        c: random((2, 2, 4), 10),
    };
    let opts = ForwardOptions {
        initial: Some(&bad),
        seq_lens: None,
    };
    let err = gpu.forward(x.view(), opts).unwrap_err().to_string();
    assert!(err.contains("h_0"), "{err}");
    let dy: Array3<f32> = random((5, 2, 4), 11);
    let up = Upstream {
        dy: Some(dy.view()),
        dh_n: None,
        dc_n: None,
    };
    let err = gpu
        .forward_backward(x.view(), ForwardOptions::default(), up)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dy"), "{err}");
}

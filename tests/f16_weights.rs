//! `GpuLstm::new_f16`: the recurrent weights stored as f16 (`weights_f16.wgsl`), f32
//! math. Against the CPU path on the same weights rounded to f16 (the exact twin) in
//! every tiling, poisoned, on awkward shapes, layers, both directions, lengths, states
//! and peepholes; against f32 weights on PyTorch's fixtures (the price of f16, bounded);
//! training refused.

mod common;

use std::sync::Arc;

use common::*;
use half::f16;
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::interop::torch;
use lstm_wgpu::{
    ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmWeights, Peephole, PeepholeWeights,
    StepTiling,
};

/// `w` with every recurrent matrix (`W_hh`, and `W_ch` for Full peepholes) rounded to f16.
fn rounded(w: &LstmWeights) -> LstmWeights {
    let round = |m: &ndarray::Array2<f32>| m.mapv(|v| f16::from_f32(v).to_f32());
    let mut r = w.clone();
    for l in &mut r.layers {
        l.w_hh = round(&l.w_hh);
        if let PeepholeWeights::Full(m) = &l.peephole {
            l.peephole = PeepholeWeights::Full(round(m));
        }
    }
    r
}

fn compare(ctx: &Arc<GpuContext>, cfg: LstmConfig, t: usize, b: usize, lens: Option<&[usize]>) {
    let w = LstmWeights::init(&cfg, (t * 7 + b) as u64).unwrap();
    let x = random_input(&cfg, t, b, 3);
    let init = random_state(&cfg, b, 4);
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: lens,
    };
    let want = cpu::forward(&rounded(&w), x.view(), opts).unwrap();
    let mut gpu = GpuLstm::new_f16(ctx.clone(), &w).unwrap();
    gpu.set_poison_outputs(true);
    for tiling in StepTiling::ALL {
        gpu.set_tiling(tiling);
        let got = gpu.forward(x.view(), opts).unwrap();
        let what = format!("f16 {cfg:?} T={t} B={b} {tiling:?}");
        assert_close(&format!("{what} y"), &got.y, &want.y, GPU_ATOL, GPU_RTOL);
        assert_close(
            &format!("{what} h_n"),
            &got.h_n,
            &want.h_n,
            GPU_ATOL,
            GPU_RTOL,
        );
        assert_close(
            &format!("{what} c_n"),
            &got.c_n,
            &want.c_n,
            GPU_ATOL,
            GPU_RTOL,
        );
    }
}

#[test]
fn f16_weights_equal_the_cpu_on_rounded_weights() {
    let Some(ctx) = shared_context() else { return };
    compare(&ctx, LstmConfig::new(1, 1), 1, 1, None);
    compare(&ctx, LstmConfig::new(3, 17), 5, 1, None);
    compare(&ctx, LstmConfig::new(7, 33).bias(false), 3, 19, None);
    // 4 | H: the written-out software form (weights read as f16 pairs, two at a time).
    let quads = LstmConfig::new(5, 12)
        .peephole(Peephole::Full)
        .bidirectional(true);
    compare(&ctx, quads, 4, 6, Some(&[4, 1, 3, 4, 2, 4]));
    let stacked = LstmConfig::new(4, 6)
        .layers(2)
        .bidirectional(true)
        .batch_first(true);
    compare(&ctx, stacked, 6, 5, Some(&[6, 1, 4, 2, 5]));
    compare(
        &ctx,
        LstmConfig::new(3, 9).peephole(Peephole::Diagonal),
        4,
        3,
        None,
    );
    compare(
        &ctx,
        LstmConfig::new(3, 9).peephole(Peephole::Full),
        4,
        3,
        None,
    );
}

/// The price of f16 storage on PyTorch's fixtures: the output against the f32 path.
/// (Measured 3.3e-5 on lavapipe; a wrong unpack is far past the bound.)
#[test]
fn f16_weights_stay_near_f32_on_pytorch_fixtures() {
    let Some(ctx) = shared_context() else { return };
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    let mut worst = 0.0f32;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "safetensors") {
            continue;
        }
        let map = lstm_wgpu::interop::tensors::TensorMap::read_safetensors(&path).unwrap();
        let Ok(mut w) = torch::from_tensors(&map, "") else {
            continue;
        };
        w.config.batch_first = map.metadata.get("batch_first").is_some_and(|v| v == "true");
        let Some(x) = map.tensors.get("x") else {
            continue;
        };
        let x = x.clone().into_dimensionality::<ndarray::Ix3>().unwrap();
        let want = cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
        let got = GpuLstm::new_f16(ctx.clone(), &w)
            .unwrap()
            .forward(x.view(), ForwardOptions::default())
            .unwrap();
        worst = worst.max(max_diff(&got.y, &want.y));
    }
    eprintln!("f16 vs f32 weights, PyTorch fixtures: max |Δy| {worst:.2e}");
    assert!(worst > 0.0 && worst < 1e-3, "max |Δy| {worst}");
}

#[test]
fn f16_weights_do_not_train() {
    let Some(ctx) = shared_context() else { return };
    let cfg = LstmConfig::new(3, 4);
    let w = LstmWeights::init(&cfg, 1).unwrap();
    let gpu = GpuLstm::new_f16(ctx, &w).unwrap();
    let x = random_input(&cfg, 2, 2, 5);
    let up = Upstream {
        dy: None,
        dh_n: None,
        dc_n: None,
    };
    let err = gpu.forward_backward(x.view(), ForwardOptions::default(), up);
    assert!(err.err().unwrap().to_string().contains("f16"));
}

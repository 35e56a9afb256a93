//! A million-step sequence on the GPU through the host's chunking: the last state and
//! the last outputs match the CPU path, and the GPU memory it takes is the input and
//! the output plus a bound that does not grow with T (chunks of at most
//! `MAX_CHUNK_STEPS` steps share one index table and one projection buffer).

mod common;

use std::sync::Arc;

use common::{assert_close, random_input, shared_context};
use lstm_wgpu::{cpu, ForwardOptions, GpuLstm, LstmConfig, LstmWeights};
use ndarray::s;

#[test]
fn a_million_steps_match_the_cpu_path_in_bounded_memory() {
    let Some(_) = shared_context() else { return };
    // Its own context, so that its buffer count is this test's alone.
    let ctx = Arc::new(common::try_context().expect("an adapter"));
    let (t, b) = (1_000_000, 1);
    let cfg = LstmConfig::new(2, 4);
    let w = LstmWeights::init(&cfg, 11).unwrap();
    let x = random_input(&cfg, t, b, 12);
    let opts = ForwardOptions::default();
    let want = cpu::forward(&w, x.view(), opts).unwrap();

    let before = ctx.creation_counts().buffer_bytes;
    let t0 = std::time::Instant::now();
    let got = GpuLstm::new(ctx.clone(), &w)
        .unwrap()
        .forward(x.view(), opts)
        .unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let bytes = ctx.creation_counts().buffer_bytes - before;

    assert_close("h_n", &got.h_n, &want.h_n, 1e-4, 1e-4);
    assert_close("c_n", &got.c_n, &want.c_n, 1e-4, 1e-4);
    let tail = s![t - 1000.., .., ..];
    assert_close(
        "y, last 1000 steps",
        &got.y.slice(tail).to_owned(),
        &want.y.slice(tail).to_owned(),
        1e-4,
        1e-4,
    );
    // Input and output must exist somewhere; the output twice (on the GPU and in a
    // staging buffer for the readback). Everything else is bounded by a constant.
    let io = 4 * (t * b * (cfg.input_size + 2 * cfg.hidden_size)) as u64;
    println!(
        "T = {t}: {seconds:.1} s on the GPU path, {:.1} MB of GPU buffers created ({:.1} MB of them input and output)",
        bytes as f64 / 1e6,
        io as f64 / 1e6
    );
    assert!(
        bytes <= io + (16 << 20),
        "{bytes} bytes of GPU buffers for {io} bytes of input and output"
    );
}

/// Two bidirectional layers over 40,000 steps: 160,000 step dispatches, so the host
/// submits the run in segments that cut through a layer's reverse direction.
#[test]
fn segmented_submits_of_a_stacked_bidirectional_model_match_the_cpu_path() {
    let Some(ctx) = shared_context() else { return };
    let (t, b) = (40_000, 2);
    let cfg = LstmConfig::new(3, 3).layers(2).bidirectional(true);
    let w = LstmWeights::init(&cfg, 21).unwrap();
    let x = random_input(&cfg, t, b, 22);
    let lens = [t, t - 777];
    let opts = ForwardOptions {
        initial: None,
        seq_lens: Some(&lens),
    };
    let want = cpu::forward(&w, x.view(), opts).unwrap();
    let got = GpuLstm::new(ctx, &w)
        .unwrap()
        .forward(x.view(), opts)
        .unwrap();
    assert_close("h_n", &got.h_n, &want.h_n, 1e-4, 1e-4);
    assert_close("c_n", &got.c_n, &want.c_n, 1e-4, 1e-4);
    assert_close("y", &got.y, &want.y, 1e-4, 1e-4);
}

/// Paths that need the whole sequence in one chunk (resident runs) take chunks as long
/// as a binding allows, not the 4,096-step cap of the chunked paths (a regression test).
#[test]
fn a_resident_run_longer_than_the_chunk_cap() {
    let Some(ctx) = shared_context() else { return };
    let (t, b) = (5000, 1);
    let cfg = LstmConfig::new(2, 3);
    let w = LstmWeights::init(&cfg, 31).unwrap();
    let x = random_input(&cfg, t, b, 32);
    let gpu = GpuLstm::new(ctx, &w).unwrap();
    let out = gpu
        .forward_resident(&gpu.upload_sequence(x.view()).unwrap(), None, None)
        .unwrap();
    let want = cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
    let state = gpu.read_state(&out.state, b).unwrap();
    assert_close("resident h_n", &state.h, &want.h_n, 1e-4, 1e-4);
}

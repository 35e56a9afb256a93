//! Stateful streaming (Keras `stateful=True`): a sequence pushed window by window, in
//! random splits, gives the outputs and final state of one forward over the whole
//! sequence bit for bit, on the CPU path and on the GPU (state resident between
//! pushes); single rows reset or set without touching the others.

mod common;

use common::{push_all, random_input, random_split, shared_context};
use lstm_wgpu::cpu::{self, CpuStream};
use lstm_wgpu::{ForwardOptions, GpuLstm, LstmConfig, LstmError, LstmState, LstmWeights, Peephole};
use ndarray::{s, Array2, Axis};

fn configs() -> Vec<LstmConfig> {
    vec![
        LstmConfig::new(3, 5),
        LstmConfig::new(4, 7).layers(2).peephole(Peephole::Diagonal),
        LstmConfig::new(2, 6)
            .peephole(Peephole::Full)
            .batch_first(true),
    ]
}

#[test]
fn any_split_equals_one_forward_bit_for_bit() {
    let ctx = shared_context();
    for (k, cfg) in configs().into_iter().enumerate() {
        let (t, b) = (23, 3);
        let w = LstmWeights::init(&cfg, 40 + k as u64).unwrap();
        let x = random_input(&cfg, t, b, 50 + k as u64);
        let whole_cpu = cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
        for seed in 0..3 {
            let split = random_split(t, 60 + seed);
            let mut s = CpuStream::new(&w, b).unwrap();
            let y = push_all(&x, time(cfg.batch_first), &split, |v| s.push(v).unwrap());
            assert!(y == whole_cpu.y, "CPU {cfg:?} split {split:?}: y differs");
            assert!(s.state().h == whole_cpu.h_n && s.state().c == whole_cpu.c_n);

            let Some(ctx) = ctx.clone() else { continue };
            let gpu = GpuLstm::new(ctx, &w).unwrap();
            let whole = gpu.forward(x.view(), ForwardOptions::default()).unwrap();
            let mut g = gpu.stream(b).unwrap();
            let y = push_all(&x, time(cfg.batch_first), &split, |v| g.push(v).unwrap());
            assert!(y == whole.y, "GPU {cfg:?} split {split:?}: y differs");
            let st = g.state().unwrap();
            assert!(
                st.h == whole.h_n && st.c == whole.c_n,
                "GPU {cfg:?}: state differs"
            );
        }
    }
}

#[test]
fn rows_reset_and_set_alone() {
    let cfg = LstmConfig::new(3, 4).layers(2);
    let (t, b) = (6, 3);
    let w = LstmWeights::init(&cfg, 7).unwrap();
    let x = random_input(&cfg, 2 * t, b, 8);
    let (first, second) = (x.slice(s![..t, .., ..]), x.slice(s![t.., .., ..]));
    // Row 1 restarts at step t from a given state; rows 0 and 2 carry on.
    let given_h = Array2::from_elem((2, 4), 0.25f32);
    let given_c = Array2::from_elem((2, 4), -0.5f32);
    let whole = cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
    let mut init = LstmState {
        h: whole.h_n.clone(),
        c: whole.c_n.clone(),
    };
    let mid = cpu::forward(&w, first, ForwardOptions::default()).unwrap();
    init.h.assign(&mid.h_n);
    init.c.assign(&mid.c_n);
    init.h.index_axis_mut(Axis(1), 1).assign(&given_h);
    init.c.index_axis_mut(Axis(1), 1).assign(&given_c);
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: None,
    };
    let want = cpu::forward(&w, second, opts).unwrap();

    let mut s = CpuStream::new(&w, b).unwrap();
    s.push(first).unwrap();
    s.set_row(1, given_h.view(), given_c.view()).unwrap();
    assert!(s.push(second).unwrap() == want.y, "CPU: set_row");

    if let Some(ctx) = shared_context() {
        let gpu = GpuLstm::new(ctx, &w).unwrap();
        let mut g = gpu.stream(b).unwrap();
        g.push(first).unwrap();
        g.set_row(1, given_h.view(), given_c.view()).unwrap();
        let y = g.push(second).unwrap();
        common::assert_close("GPU set_row", &y, &want.y, 1e-5, 1e-5);
        // Reset row 0: it continues as from a zero state, the others unchanged.
        g.reset_rows(&[0]).unwrap();
        let st = g.state().unwrap();
        assert!(st.h.index_axis(Axis(1), 0).iter().all(|&v| v == 0.0));
        assert!(st.h.index_axis(Axis(1), 2).iter().any(|&v| v != 0.0));
    }
    s.reset_rows(&[0]).unwrap();
    assert!(s.state().h.index_axis(Axis(1), 0).iter().all(|&v| v == 0.0));
}

#[test]
fn bad_streams_are_errors() {
    let bi = LstmWeights::init(&LstmConfig::new(2, 3).bidirectional(true), 1).unwrap();
    assert!(matches!(CpuStream::new(&bi, 2), Err(LstmError::Config(_))));
    let w = LstmWeights::init(&LstmConfig::new(2, 3), 1).unwrap();
    assert!(CpuStream::new(&w, 0).is_err());
    let mut s = CpuStream::new(&w, 2).unwrap();
    let wrong_batch = random_input(&w.config, 4, 3, 1);
    assert!(s.push(wrong_batch.view()).is_err());
    assert!(s
        .set_row(
            2,
            Array2::zeros((1, 3)).view(),
            Array2::zeros((1, 3)).view()
        )
        .is_err());
    let Some(ctx) = shared_context() else { return };
    assert!(GpuLstm::new(ctx.clone(), &bi).unwrap().stream(2).is_err());
    let gpu = GpuLstm::new(ctx, &w).unwrap();
    let mut g = gpu.stream(2).unwrap();
    assert!(g.push(wrong_batch.view()).is_err());
    assert!(g
        .set_row(
            5,
            Array2::zeros((1, 3)).view(),
            Array2::zeros((1, 3)).view()
        )
        .is_err());
    assert!(g
        .set_row(
            0,
            Array2::zeros((2, 3)).view(),
            Array2::zeros((1, 3)).view()
        )
        .is_err());
}

/// The time axis of a sequence in the config's layout.
fn time(batch_first: bool) -> Axis {
    Axis(usize::from(batch_first))
}

//! `cpu::CpuLstm`, the CPU model that packs its weights once: its forwards match the
//! one-off `cpu::forward` on every path (the batch-of-one matrix-vector product, the
//! packed step, the hidden-unit split, Full peepholes), repeat bit for bit whatever the
//! shapes called between them, and bad input gives an error.

mod common;

use common::{max_diff, random, random_input};
use lstm_wgpu::cpu::{self, CpuLstm};
use lstm_wgpu::{ForwardOptions, LstmConfig, LstmOutput, LstmState, LstmWeights, Peephole};
use ndarray::Array2;

fn flat(o: &LstmOutput) -> Vec<u32> {
    let all = o.y.iter().chain(o.h_n.iter()).chain(o.c_n.iter());
    all.map(|v| v.to_bits()).collect()
}

/// Worst difference over `y`, `h_n` and `c_n`.
fn diff(a: &LstmOutput, b: &LstmOutput) -> f32 {
    let y = max_diff(&a.y, &b.y);
    y.max(max_diff(&a.h_n, &b.h_n))
        .max(max_diff(&a.c_n, &b.c_n))
}

/// Each config at several (T, B): the model against `cpu::forward`, then each shape
/// again after all the others (the packs it reuses were made for other shapes first).
#[test]
fn a_prepared_model_matches_forward_and_repeats_its_bits() {
    let configs = [
        // Two layers, both directions, diagonal peepholes: the unit split at B = 16
        // (with two threads; 56 + 44 units).
        LstmConfig::new(12, 100)
            .layers(2)
            .bidirectional(true)
            .peephole(Peephole::Diagonal),
        // Full peepholes (W_ch packed at B > 4, matrix-vector at B ≤ 4), no bias.
        LstmConfig::new(9, 24).peephole(Peephole::Full).bias(false),
        // 4H = 120: a partial last panel of 16 rows; I = 7, H = 30: k loops with tails.
        LstmConfig::new(7, 30).peephole(Peephole::Full),
        // Three layers of one direction: a pack used for the wrong layer would show.
        LstmConfig::new(20, 20).layers(3),
    ];
    for (k, cfg) in configs.iter().enumerate() {
        let w = LstmWeights::init(cfg, 20 + k as u64).unwrap();
        let model = CpuLstm::new(&w).unwrap();
        let shapes = [(1, 1), (7, 16), (5, 3), (70, 16)];
        let inputs: Vec<_> = shapes
            .iter()
            .map(|&(t, b)| random_input(cfg, t, b, 30 + t as u64))
            .collect();
        let mut first = Vec::new();
        for ((t, b), x) in shapes.iter().zip(&inputs) {
            let got = model.forward(x.view(), ForwardOptions::default()).unwrap();
            let want = cpu::forward(&w, x.view(), ForwardOptions::default()).unwrap();
            let err = diff(&got, &want);
            assert!(
                err < 1e-5,
                "config {k}, T={t} B={b}: {err} from cpu::forward"
            );
            first.push(flat(&got));
        }
        for (i, x) in inputs.iter().enumerate().rev() {
            let again = model.forward(x.view(), ForwardOptions::default()).unwrap();
            assert!(
                flat(&again) == first[i],
                "config {k}, shape {i}: bits changed"
            );
        }
    }
}

/// Lengths and an initial state go through the model as through `cpu::forward`.
#[test]
fn lengths_and_initial_state() {
    let cfg = LstmConfig::new(6, 36).bidirectional(true);
    let w = LstmWeights::init(&cfg, 40).unwrap();
    let model = CpuLstm::new(&w).unwrap();
    let (t, b) = (9, 8);
    let x = random_input(&cfg, t, b, 41);
    let lens: Vec<usize> = (0..b).map(|i| t - i % t).collect();
    let initial = LstmState {
        h: random((2, b, 36), 42),
        c: random((2, b, 36), 43),
    };
    let opts = || ForwardOptions {
        initial: Some(&initial),
        seq_lens: Some(&lens),
    };
    let got = model.forward(x.view(), opts()).unwrap();
    let want = cpu::forward(&w, x.view(), opts()).unwrap();
    assert!(diff(&got, &want) < 1e-5);
}

#[test]
fn bad_weights_and_inputs_are_errors() {
    let cfg = LstmConfig::new(5, 8);
    let mut w = LstmWeights::init(&cfg, 50).unwrap();
    let model = CpuLstm::new(&w).unwrap();
    let wrong_width = random((3, 2, 4), 51);
    let err = model.forward(wrong_width.view(), ForwardOptions::default());
    assert!(err.is_err(), "an input 4 wide for input_size 5");
    let empty = random((0, 2, 5), 52);
    assert!(model
        .forward(empty.view(), ForwardOptions::default())
        .is_err());
    w.layers[0].w_hh = Array2::zeros((32, 7));
    let err = CpuLstm::new(&w).err().expect("a 32 × 7 W_hh for H = 8");
    assert!(err.to_string().contains("weight_hh"), "{err}");
}

#[test]
fn the_model_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CpuLstm>();
}

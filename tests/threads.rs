//! Two CPU threads give the bits of one: the forward (batch halves of each training
//! step, hidden-unit halves of each inference layer-direction at any batch, row halves of
//! the input projection), BPTT (row halves of the gradient GEMMs and of dX)
//! and a few training steps, at shapes large enough for every split to happen. And the
//! AVX2 kernels give the bits of the AVX-512 ones (`cpu::set_avx512`). One test in its
//! own binary: the thread count and the instruction set are process-wide.

mod common;

use common::{random, random_input, random_state};
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::train::{Batch, Classifier, ClassifierParams, CpuClassifier, TrainConfig};
use lstm_wgpu::{
    ForwardOptions, GruConfig, GruOptions, GruWeights, LstmConfig, LstmWeights, Peephole,
};

/// A bidirectional forward and backward by batch halves of 8 and 9 rows, with lengths
/// (padded rows in both halves) and a random initial state; what they return, flattened.
fn bidirectional_training() -> Vec<Vec<f32>> {
    let cfg = LstmConfig::new(24, 64).bidirectional(true);
    let (t, b) = (11, 17);
    let w = LstmWeights::init(&cfg, 40).unwrap();
    let x = random_input(&cfg, t, b, 41);
    let init = random_state(&cfg, b, 42);
    let lens: Vec<usize> = (0..b).map(|i| 1 + (i * 7) % t).collect();
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let (out, cache) = cpu::forward_train(&w, x.view(), opts).unwrap();
    let dy = random((t, b, 128), 43);
    let up = Upstream {
        dy: Some(dy.view()),
        dh_n: None,
        dc_n: None,
    };
    let g = cpu::backward(&w, &cache, up).unwrap();
    let mut all = vec![out.y.iter().chain(out.c_n.iter()).copied().collect()];
    all.push(g.dx.iter().chain(g.dh0.iter()).copied().collect());
    all.extend(
        g.params
            .layers
            .iter()
            .map(|l| l.w_hh.iter().copied().collect()),
    );
    all
}

/// A narrow input (2·I ≤ B) is projected in each step's product, where the projection
/// ahead would be packed (BENCHMARKS.md §34): in the prepared model (packed at any
/// rows) and at T·B ≥ 1,024. Its batch halves (2·I > B/2) and unit halves project
/// ahead, and must give the bits of the whole: I = 300 at T·B = 600 one-off projects
/// through ndarray's GEMM (K = 300 in two blocks), whole or halved. What they return,
/// flattened.
fn narrow_inputs() -> Vec<Vec<f32>> {
    let mut all = Vec::new();
    for (narrow, t, b) in [
        (LstmConfig::new(8, 128), 70, 16),
        (LstmConfig::new(300, 32), 1, 600),
    ] {
        let wn = LstmWeights::init(&narrow, 16).unwrap();
        let xn = random_input(&narrow, t, b, 17);
        let opts = ForwardOptions::default();
        let (train, _) = cpu::forward_train(&wn, xn.view(), opts).unwrap();
        let prepared = cpu::CpuLstm::new(&wn).unwrap();
        for o in [
            cpu::forward(&wn, xn.view(), opts).unwrap(),
            prepared.forward(xn.view(), opts).unwrap(),
            train,
        ] {
            all.push(o.y.iter().chain(o.c_n.iter()).copied().collect());
        }
    }
    all
}

/// Inference on two threads: by batch halves for the whole sequence (B = 16, and the
/// prepared model at T = 64), or each layer-direction split by hidden units (B = 12,
/// and the one-off forward at T = 64, whose halves would not pack their projection as
/// the whole does; H = 100, so the halves are 56 + 44 units); both directions, diagonal
/// peepholes, rows that stop early (the reverse direction's rows start late) and a
/// random initial state. What they return, flattened.
fn inference_splits() -> Vec<Vec<f32>> {
    let mut all = Vec::new();
    let peep = LstmConfig::new(300, 100)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    // T = 12 projects through ndarray's GEMM a gate block at a time, T = 64 (1,024 rows)
    // through the packed kernel. I = 300: ndarray's GEMM sums K = 300 in two blocks, so
    // halves that projected otherwise than the whole would change the bits.
    let w2 = LstmWeights::init(&peep, 10).unwrap();
    for (t, b) in [(12, 16), (64, 16), (20, 12)] {
        let x2 = random_input(&peep, t, b, 11);
        let lens: Vec<usize> = (0..b).map(|i| t - (i * 7) % t).collect();
        let initial = lstm_wgpu::LstmState {
            h: random((4, b, 100), 12),
            c: random((4, b, 100), 13),
        };
        let opts = ForwardOptions {
            initial: Some(&initial),
            seq_lens: Some(&lens),
        };
        let out2 = cpu::forward(&w2, x2.view(), opts).unwrap();
        // The prepared model packs the halves' projections at any number of rows.
        let out3 = cpu::CpuLstm::new(&w2)
            .unwrap()
            .forward(x2.view(), opts)
            .unwrap();
        for o in [out2, out3] {
            let (y, h_n, c_n) = (o.y.iter(), o.h_n.iter(), o.c_n.iter());
            all.push(y.chain(h_n).chain(c_n).copied().collect());
        }
    }
    all
}

/// Forward, backward and three training steps; everything they return, flattened.
fn run_all(threads: usize) -> Vec<Vec<f32>> {
    cpu::set_threads(threads);
    let cfg = LstmConfig::new(32, 96)
        .layers(2)
        .peephole(Peephole::Diagonal);
    let (t, b) = (20, 16);
    let w = LstmWeights::init(&cfg, 3).unwrap();
    let x = random_input(&cfg, t, b, 4);
    let (out, cache) = cpu::forward_train(&w, x.view(), ForwardOptions::default()).unwrap();
    let dy = random((t, b, 96), 5);
    let up = Upstream {
        dy: Some(dy.view()),
        dh_n: None,
        dc_n: None,
    };
    let g = cpu::backward(&w, &cache, up).unwrap();
    let mut all = vec![
        out.y.iter().copied().collect(),
        g.dx.iter().copied().collect(),
    ];
    for l in &g.params.layers {
        all.push(l.w_ih.iter().chain(l.w_hh.iter()).copied().collect());
    }
    all.extend(bidirectional_training());
    let lstm = LstmConfig::new(32, 96).batch_first(true);
    let params = ClassifierParams::init(&lstm, 10, 1.0, 6).unwrap();
    let mut model = CpuClassifier::new(params, TrainConfig::default()).unwrap();
    let xb = random((b, t, 32), 7);
    let labels: Vec<usize> = (0..b).map(|i| i % 10).collect();
    let batch = Batch {
        x: xb.view(),
        targets: &labels,
        seq_lens: None,
    };
    for _ in 0..3 {
        model.train_step(&batch, false).unwrap();
    }
    let p = model.params().unwrap();
    all.push(p.lstm.layers[0].w_hh.iter().copied().collect());
    all.push(p.dense.weight.iter().copied().collect());
    // B ≤ 4: each step's matrix-vector products split by their rows (4H = 1200 × 300,
    // rows with a tail past the 8-wide loads; with Full peepholes 1024 × 256 twice):
    // row-major in the one-off forward (T = 6); in the prepared model by packed panels,
    // each layer-direction split by hidden units (152 + 148), or with Full peepholes each
    // product's 64 panels in halves.
    let small = [
        (LstmConfig::new(8, 300).bidirectional(true), 1),
        (LstmConfig::new(8, 300), 3),
        (LstmConfig::new(8, 256).peephole(Peephole::Full), 2),
    ];
    for (one, b) in small {
        let w1 = LstmWeights::init(&one, 8).unwrap();
        let x1 = random_input(&one, 6, b, 9);
        for out1 in [
            cpu::forward(&w1, x1.view(), ForwardOptions::default()).unwrap(),
            cpu::CpuLstm::new(&w1)
                .unwrap()
                .forward(x1.view(), ForwardOptions::default())
                .unwrap(),
        ] {
            all.push(out1.y.iter().chain(out1.c_n.iter()).copied().collect());
        }
    }
    all.extend(narrow_inputs());
    all.extend(inference_splits());
    // The GRU's pointwise update (its own vectorised loop), both directions.
    let gru = GruConfig::new(24, 40).bidirectional(true);
    let wg = GruWeights::init(&gru, 14).unwrap();
    let xg = random((9, 16, 24), 15);
    let og = cpu::gru_forward(&wg, xg.view(), GruOptions::default()).unwrap();
    all.push(og.y.iter().chain(og.h_n.iter()).copied().collect());
    // On two threads by batch halves (8 + 8 rows), training too: its kept gates and
    // states joined from the halves.
    let (ot, cache) = cpu::gru_forward_train(&wg, xg.view(), GruOptions::default()).unwrap();
    all.push(ot.y.iter().chain(ot.h_n.iter()).copied().collect());
    for ld in 0..2 {
        let (g, p) = (cache.gates[ld].iter(), cache.h_prev[ld].iter());
        all.push(g.chain(p).copied().collect());
    }
    all
}

#[test]
fn two_threads_and_avx2_give_the_bits_of_one_thread_and_avx512() {
    let one = run_all(1);
    let two = run_all(2);
    cpu::set_avx512(false);
    let avx2 = run_all(1);
    cpu::set_avx512(true);
    cpu::set_threads(1);
    for (what, other) in [("two threads", &two), ("AVX2", &avx2)] {
        for (k, (a, b)) in one.iter().zip(other).enumerate() {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "output {k} differs between one thread and {what}");
        }
    }
}

//! Library calls with inconsistent operands return an `LstmError`, never panic: the
//! kernels' CPU twins, backward, the training pieces, and sizes that would overflow or
//! not fit in memory, on the CPU path and (where it applies) `GpuLstm`.

mod common;

use common::*;
use lstm_wgpu::cpu::{self, ForwardCache, Upstream};
use lstm_wgpu::train::{
    fit, Batch, Classifier, ClassifierParams, CpuClassifier, Dataset, FitConfig, LrSchedule,
    TrainConfig,
};
use lstm_wgpu::{ForwardOptions, GpuLstm, LstmConfig, LstmError, LstmState, LstmWeights, Peephole};
use ndarray::{Array1, Array2, Array3};

/// The error's message; fails the test on `Ok`.
fn err<T>(r: Result<T, LstmError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn weights(cfg: &LstmConfig) -> LstmWeights {
    LstmWeights::init(cfg, 1).unwrap()
}

#[test]
fn step_twins_with_mismatched_operands() {
    let w = &weights(&LstmConfig::new(3, 4)).layers[0];
    let (gx, h, c) = (random((2, 16), 1), random((2, 4), 2), random((2, 4), 3));
    let on = [true, true];
    // Batch 3 in `active`, 2 in the arrays; then an H of 5 against the weights' 4.
    let s = err(cpu::lstm_step(gx.view(), h.view(), c.view(), w, &[true; 3]));
    assert!(s.contains("[3, 16]"), "{s}");
    let h5 = random((2, 5), 4);
    let s = err(cpu::lstm_step(gx.view(), h5.view(), c.view(), w, &on));
    assert!(s.contains("h") && s.contains("[2, 4]"), "{s}");
    let s = err(cpu::lstm_step_with_gates(
        random((2, 15), 1).view(),
        h.view(),
        c.view(),
        w,
        &on,
    ));
    assert!(s.contains("gx"), "{s}");
    let gates = random((2, 16), 5);
    let s = err(cpu::lstm_step_backward(
        h.view(),
        c.view(),
        gates.view(),
        random((3, 4), 6).view(),
        w,
        &on,
    ));
    assert!(s.contains("c_prev"), "{s}");
}

#[test]
fn softmax_xent_with_bad_labels_or_lengths() {
    let logits = random((3, 4), 1);
    let s = err(cpu::softmax_xent(logits.view(), &[0, 4, 1], &[1.0; 3], 1.0));
    assert!(s.contains("targets[1]") && s.contains("label 4"), "{s}");
    let s = err(cpu::softmax_xent(logits.view(), &[0, 1], &[1.0; 3], 1.0));
    assert!(s.contains("one per logits row"), "{s}");
    let s = err(cpu::softmax_xent(logits.view(), &[0, 1, 2], &[1.0; 2], 1.0));
    assert!(s.contains("one per logits row"), "{s}");
}

/// A cache from another call: another model, another batch, or nothing at all.
#[test]
fn backward_with_a_foreign_cache() {
    let cfg = LstmConfig::new(3, 4).layers(2);
    let w = weights(&cfg);
    let (_, cache) =
        cpu::forward_train(&w, random((5, 2, 3), 1).view(), Default::default()).unwrap();
    let other = weights(&LstmConfig::new(3, 6).layers(2));
    let one_layer = weights(&LstmConfig::new(3, 4));
    let bi = weights(&LstmConfig::new(3, 4).layers(2).bidirectional(true));
    for (name, w) in [
        ("hidden", &other),
        ("layers", &one_layer),
        ("directions", &bi),
    ] {
        let s = err(cpu::backward(w, &cache, Upstream::default()));
        assert!(s.contains("forward cache"), "{name}: {s}");
    }
    let s = err(cpu::backward(
        &w,
        &ForwardCache::default(),
        Upstream::default(),
    ));
    assert!(s.contains("empty"), "{s}");
    let mut lens = cache.clone();
    lens.lens = vec![5, 9];
    let s = err(cpu::backward(&w, &lens, Upstream::default()));
    assert!(s.contains("sequence lengths"), "{s}");
    let mut short = cache.clone();
    short.lens.pop();
    assert!(cpu::backward(&w, &short, Upstream::default()).is_err());
}

#[test]
fn backward_with_misshaped_upstream_gradients() {
    let cfg = LstmConfig::new(3, 4);
    let w = weights(&cfg);
    let (_, cache) =
        cpu::forward_train(&w, random((5, 2, 3), 1).view(), Default::default()).unwrap();
    let (dy, state) = (random((5, 3, 4), 2), random((1, 3, 4), 3));
    let cases = [
        (
            "dy",
            Upstream {
                dy: Some(dy.view()),
                ..Default::default()
            },
        ),
        (
            "dh_n",
            Upstream {
                dh_n: Some(state.view()),
                ..Default::default()
            },
        ),
        (
            "dc_n",
            Upstream {
                dc_n: Some(state.view()),
                ..Default::default()
            },
        ),
    ];
    for (name, up) in cases {
        let s = err(cpu::backward(&w, &cache, up));
        assert!(s.starts_with(&format!("shape mismatch for {name}")), "{s}");
    }
}

/// Sizes whose products overflow `usize` or exceed memory: a config error, not an
/// overflow panic (the tests build with overflow checks) or an allocation abort.
#[test]
fn sizes_that_overflow_or_do_not_fit() {
    let huge = usize::MAX / 2 + 1;
    for cfg in [
        LstmConfig::new(3, huge),
        LstmConfig::new(huge, 4),
        LstmConfig::new(3, 1 << 20),
        LstmConfig::new(1, 1).layers(huge),
        LstmConfig::new(1, 1).layers(usize::MAX).bidirectional(true),
        LstmConfig::new(8, 4)
            .layers(1 << 60)
            .peephole(Peephole::Full),
    ] {
        let s = err(LstmWeights::init(&cfg, 0));
        assert!(s.contains("too large"), "{cfg:?}: {s}");
        let lying = LstmWeights {
            config: cfg.clone(),
            layers: Vec::new(),
        };
        let s = err(cpu::forward(
            &lying,
            random((2, 1, 1), 1).view(),
            Default::default(),
        ));
        assert!(s.contains("too large"), "{cfg:?}: {s}");
        if let Some(ctx) = shared_context() {
            let s = err(GpuLstm::new(ctx, &lying));
            assert!(s.contains("too large"), "{cfg:?}: {s}");
        }
    }
}

/// Weights whose tensors disagree with their config, on both paths; the combined
/// bias of inconsistent weights is still `[4H]`, not a panic.
#[test]
fn weights_inconsistent_with_their_config() {
    let cfg = LstmConfig::new(3, 4).peephole(Peephole::Diagonal);
    let mut zero = weights(&cfg);
    zero.config.input_size = 0;
    let mut bias = weights(&cfg);
    bias.layers[0].b_hh = Some(Array1::zeros(15));
    let mut peep = weights(&cfg);
    peep.layers[0].peephole = lstm_wgpu::PeepholeWeights::Full(Array2::zeros((16, 4)));
    let mut no_bias = weights(&cfg);
    no_bias.config.bias = false;
    let x = random((2, 1, 3), 1);
    for (name, w, needle) in [
        ("zero size", &zero, "input_size must be at least 1"),
        ("bias length", &bias, "bias_hh_l0"),
        ("peephole kind", &peep, "peephole weights of l0"),
        ("bias present", &no_bias, "absent (bias = false)"),
    ] {
        let s = err(cpu::forward(w, x.view(), Default::default()));
        assert!(s.contains(needle), "cpu {name}: {s}");
        if let Some(ctx) = shared_context() {
            let s = err(GpuLstm::new(ctx, w));
            assert!(s.contains(needle), "gpu {name}: {s}");
        }
    }
    assert_eq!(bias.layers[0].combined_bias().len(), 16);
}

/// Non-finite numbers where they would silently poison a result.
#[test]
fn non_finite_inputs_states_and_weights() {
    let cfg = LstmConfig::new(3, 4);
    let w = weights(&cfg);
    let x = random((4, 2, 3), 1);
    let mut inf_x = x.clone();
    inf_x[[3, 1, 2]] = f32::NEG_INFINITY;
    let mut state = random_state(&cfg, 2, 2);
    state.c[[0, 1, 3]] = f32::NAN;
    let opts = ForwardOptions {
        initial: Some(&state),
        seq_lens: None,
    };
    let gpu = shared_context().map(|ctx| GpuLstm::new(ctx, &w).unwrap());
    for (name, x, opts, needle) in [
        ("input", &inf_x, ForwardOptions::default(), "input x"),
        ("c_0", &x, opts, "initial state c_0"),
    ] {
        let s = err(cpu::forward(&w, x.view(), opts));
        assert!(
            s.contains(needle) && s.contains("contains"),
            "cpu {name}: {s}"
        );
        if let Some(g) = &gpu {
            let s = err(g.forward(x.view(), opts));
            assert!(s.contains(needle), "gpu {name}: {s}");
        }
    }
    let mut nan_w = w.clone();
    nan_w.layers[0].b_ih.as_mut().unwrap()[5] = f32::NAN;
    assert!(err(nan_w.check_finite()).contains("NaN"));
}

/// The resident GPU path checks its own operands (lengths, state buffers, batch).
#[test]
fn resident_gpu_operands() {
    let Some(ctx) = shared_context() else { return };
    let cfg = LstmConfig::new(3, 4);
    let gpu = GpuLstm::new(ctx, &weights(&cfg)).unwrap();
    let seq = gpu.upload_sequence(random((5, 2, 3), 1).view()).unwrap();
    for lens in [&[0, 5][..], &[5, 6], &[5]] {
        let s = err(gpu.forward_resident(&seq, None, Some(lens)));
        assert!(s.contains("seq_lens"), "{lens:?}: {s}");
    }
    let out = gpu.forward_resident(&seq, None, None).unwrap();
    // The state of batch 2 is not the state of batch 3.
    let s = err(gpu.read_state(&out.state, 3));
    assert!(s.contains("GPU state"), "{s}");
    let seq3 = gpu.upload_sequence(random((5, 3, 3), 2).view()).unwrap();
    let s = err(gpu.forward_resident(&seq3, Some(&out.state), None));
    assert!(s.contains("initial GPU state"), "{s}");
    let s = err(gpu.upload_sequence(random((5, 2, 4), 3).view()));
    assert!(s.contains("input_size 3"), "{s}");
}

/// Initial states of the wrong shape, through the library (not just the CLI).
#[test]
fn initial_states_of_the_wrong_shape() {
    let cfg = LstmConfig::new(3, 4).bidirectional(true);
    let w = weights(&cfg);
    let x = random((4, 2, 3), 1);
    let gpu = shared_context().map(|ctx| GpuLstm::new(ctx, &w).unwrap());
    let good = random_state(&cfg, 2, 1);
    for (name, h, c) in [
        ("one direction", random((1, 2, 4), 2), good.c.clone()),
        ("hidden", good.h.clone(), random((2, 2, 5), 3)),
        ("empty", Array3::zeros((0, 0, 0)), Array3::zeros((0, 0, 0))),
    ] {
        let s = LstmState { h, c };
        let opts = ForwardOptions {
            initial: Some(&s),
            seq_lens: None,
        };
        let msg = err(cpu::forward(&w, x.view(), opts));
        assert!(msg.contains("[2, 2, 4]"), "cpu {name}: {msg}");
        if let Some(g) = &gpu {
            let msg = err(g.forward(x.view(), opts));
            assert!(msg.contains("[2, 2, 4]"), "gpu {name}: {msg}");
        }
    }
}

/// Classifier batches and training settings that make no sense.
#[test]
fn classifier_and_fit_inputs() {
    let lstm = LstmConfig::new(3, 4).batch_first(true);
    let params = ClassifierParams::init(&lstm, 5, 1.0, 0).unwrap();
    let mut model = CpuClassifier::new(params, TrainConfig::default()).unwrap();
    let x = random((2, 6, 3), 1);
    let batch = |targets: &'static [usize]| Batch {
        x: x.view(),
        targets,
        seq_lens: None,
    };
    assert!(err(model.train_step(&batch(&[0, 5]), true)).contains("label 5"));
    assert!(err(model.train_step(&batch(&[0]), true)).contains("targets"));
    assert!(err(model.evaluate(&batch(&[9, 0]))).contains("label 9"));
    let wide = random((2, 6, 4), 2);
    assert!(err(model.logits(wide.view(), None)).contains("input_size 3"));
    assert!(err(model.logits(x.view(), Some(&[7, 1]))).contains("outside 1..=6"));
    assert!(err(Dataset::new(random((3, 6, 3), 3), vec![0, 1])).contains("dataset labels"));
    let data = Dataset::new(random((4, 6, 3), 4), vec![0, 1, 2, 3]).unwrap();
    let empty = Dataset::new(Array3::zeros((0, 6, 3)), vec![]).unwrap();
    let cfg = |batch, lr| FitConfig {
        epochs: 1,
        batch,
        lr,
        schedule: LrSchedule::Constant,
        seed: 0,
    };
    for (name, train, c, needle) in [
        ("batch 0", &data, cfg(0, 1e-3), "batch size"),
        ("NaN lr", &data, cfg(2, f32::NAN), "learning rate"),
        ("empty", &empty, cfg(2, 1e-3), "must not be empty"),
    ] {
        let s = err(fit(&mut model, train, &data, &c, &mut ()));
        assert!(s.contains(needle), "{name}: {s}");
    }
}

/// Calls that used to panic (reported while the house was redesigned): each now
/// returns an error.
#[test]
fn formerly_panicking_calls_return_errors() {
    let cfg = LstmConfig::new(3, 4).layers(2);
    let w = weights(&cfg);
    let x = random((5, 2, 3), 1);
    let (_, cache) = cpu::forward_train(&w, x.view(), Default::default()).unwrap();
    let mut bad_w_hh = w.clone();
    bad_w_hh.layers[1].w_hh = Array2::zeros((16, 5));
    let mut missing_layer = w.clone();
    missing_layer.layers.pop();
    let data = Dataset::new(random((2, 6, 3), 2), vec![0, 1]).unwrap();
    let (dz, g, c) = (random((2, 16), 1), random((3, 16), 2), random((2, 4), 3));
    let rule = TrainConfig::default().update_rule(1);
    let (mut p, mut m, mut v) = (vec![0.5f32; 4], vec![vec![0.0; 4]], vec![vec![0.0; 4]]);
    let calls: Vec<(&str, bool)> = vec![
        (
            "cpu::backward, weights misshaped for their config",
            cpu::backward(&bad_w_hh, &cache, Upstream::default()).is_err(),
        ),
        (
            "cpu::backward, fewer layer-directions than the config",
            cpu::backward(&missing_layer, &cache, Upstream::default()).is_err(),
        ),
        (
            "cpu::lstm_param_grads, rows differ",
            cpu::lstm_param_grads(dz.view(), g.view(), c.view(), true).is_err(),
        ),
        (
            "cpu::matmul, inner sizes differ",
            cpu::matmul(random((2, 3), 1).view(), random((4, 5), 2).view(), None).is_err(),
        ),
        (
            "cpu::optimizer_update, fewer grads than params",
            cpu::optimizer_update(&mut [&mut p[..]], &[&[0.5; 2][..]], &mut m, &mut v, &rule)
                .is_err(),
        ),
        (
            "Dataset::gather, index past the end",
            data.gather(&[7]).is_err(),
        ),
        (
            "ClassifierParams::init, classes = usize::MAX",
            ClassifierParams::init(&LstmConfig::new(3, 4), usize::MAX, 1.0, 0).is_err(),
        ),
    ];
    let mut map = lstm_wgpu::interop::tensors::TensorMap::default();
    let export = lstm_wgpu::interop::torch::to_tensors(&missing_layer, "", &mut map);
    let calls = [
        calls,
        vec![(
            "interop::torch::to_tensors, fewer layer-directions than the config",
            export.is_err(),
        )],
    ]
    .concat();
    let failing: Vec<&str> = calls
        .iter()
        .filter(|(_, err)| !err)
        .map(|(n, _)| *n)
        .collect();
    assert!(failing.is_empty(), "no error from: {failing:#?}");
    if let Some(ctx) = shared_context() {
        let gpu = GpuLstm::new(ctx, &weights(&LstmConfig::new(3, 4))).unwrap();
        let seq = gpu.upload_sequence(random((2, 2, 3), 0).view()).unwrap();
        // T·B·I overflows a byte count.
        let lying = lstm_wgpu::GpuSequence {
            buffer: seq.buffer,
            t: 1 << 62,
            b: 4,
            features: 3,
        };
        assert!(gpu.forward_resident(&lying, None, None).is_err());
    }
}

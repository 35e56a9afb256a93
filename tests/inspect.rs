//! `apps::record_gates` (CPU and GPU), `apps::inspect` (attribution, unit order, class
//! selectivity) and the inspect figure.

mod common;

use common::*;
use lstm_wgpu::apps::inspect::{attribution, class_selectivity, final_features, unit_order};
use lstm_wgpu::apps::{record_gates, record_gates_gpu};
use lstm_wgpu::cpu;
use lstm_wgpu::train::ClassifierParams;
use lstm_wgpu::{ForwardOptions, GpuLstm, LstmConfig, LstmError, LstmWeights, Peephole};
use ndarray::{s, Array2, Axis};

/// Configs that exercise every path of the record: layers, directions, layouts,
/// peepholes, lengths and initial states.
fn configs() -> Vec<LstmConfig> {
    vec![
        LstmConfig::new(28, 64).batch_first(true),
        LstmConfig::new(5, 7).layers(2).bidirectional(true),
        LstmConfig::new(6, 9)
            .peephole(Peephole::Diagonal)
            .batch_first(true),
        LstmConfig::new(4, 5).peephole(Peephole::Full).layers(2),
    ]
}

#[test]
fn record_gates_gpu_equals_cpu() {
    let Some(ctx) = shared_context() else { return };
    let mut worst = 0.0f32;
    for (k, cfg) in configs().into_iter().enumerate() {
        let (t, b) = (11, 3);
        let w = LstmWeights::init(&cfg, 10 + k as u64).unwrap();
        let x = random_input(&cfg, t, b, 20 + k as u64);
        let init = random_state(&cfg, b, 30 + k as u64);
        let lens = [t, 4, 1];
        for (initial, seq_lens) in [(None, None), (Some(&init), Some(&lens[..]))] {
            let opts = ForwardOptions { initial, seq_lens };
            let want = record_gates(&w, x.view(), opts).unwrap();
            let gpu = GpuLstm::new(ctx.clone(), &w).unwrap();
            let got = record_gates_gpu(&gpu, x.view(), opts).unwrap();
            let d = want.max_abs_diff(&got).unwrap();
            assert!(d <= 1e-5, "{cfg:?}: GPU vs CPU gate record differs by {d}");
            worst = worst.max(d);
        }
    }
    eprintln!("record_gates GPU vs CPU: max |difference| {worst:.2e}");
}

/// A sequence longer than one storage binding: the gate cache comes back per chunk.
#[test]
fn record_gates_gpu_in_chunks() {
    let Some(mut ctx) = common::try_context() else {
        return;
    };
    let cfg = LstmConfig::new(5, 7).layers(2).bidirectional(true);
    let (t, b) = (13, 2);
    // Layer 1's w_ih (4H × D·H = 28 × 14 floats) just fits; the widest per-step row
    // (4H = 28 floats × B = 2) fits 7 times: two chunks of the 13 steps.
    ctx.set_max_binding_bytes(4 * 28 * 14);
    let w = LstmWeights::init(&cfg, 3).unwrap();
    let x = random_input(&cfg, t, b, 4);
    let opts = ForwardOptions::default();
    let gpu = GpuLstm::new(std::sync::Arc::new(ctx), &w).unwrap();
    let got = record_gates_gpu(&gpu, x.view(), opts).unwrap();
    let d = record_gates(&w, x.view(), opts)
        .unwrap()
        .max_abs_diff(&got)
        .unwrap();
    assert!(d <= 1e-5, "chunked GPU vs CPU gate record differs by {d}");
}

#[test]
fn record_gates_is_the_forward() {
    let cfg = LstmConfig::new(5, 7)
        .layers(2)
        .bidirectional(true)
        .batch_first(true);
    let (t, b) = (9, 3);
    let w = LstmWeights::init(&cfg, 1).unwrap();
    let x = random_input(&cfg, t, b, 2);
    let lens = [t, 5, 2];
    let opts = ForwardOptions {
        initial: None,
        seq_lens: Some(&lens),
    };
    let rec = record_gates(&w, x.view(), opts).unwrap();
    let out = cpu::forward(&w, x.view(), opts).unwrap();
    assert_eq!(rec.traces.len(), 4);
    let h = cfg.hidden_size;
    for d in 0..2 {
        let tr = &rec.traces[2 + d];
        for (bi, &len) in lens.iter().enumerate() {
            for ti in 0..t {
                let y = out.y.slice(s![bi, ti, d * h..(d + 1) * h]);
                let got = tr.hidden.slice(s![ti, bi, ..]);
                assert!(
                    got.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-6),
                    "h_t is y_t (dir {d}, b {bi}, t {ti})"
                );
                if ti < len {
                    // c_t = f ⊙ c_{t-1} + i ⊙ g and h_t = o ⊙ tanh(c_t), from the record alone.
                    let prev = if d == 0 {
                        ti.checked_sub(1)
                    } else {
                        Some(ti + 1).filter(|&n| n < len)
                    };
                    for j in 0..h {
                        let cp = prev.map_or(0.0, |p| tr.cell[[p, bi, j]]);
                        let (i, f, g, o) = (
                            tr.input[[ti, bi, j]],
                            tr.forget[[ti, bi, j]],
                            tr.cell_input[[ti, bi, j]],
                            tr.output[[ti, bi, j]],
                        );
                        let c = f * cp + i * g;
                        assert!((c - tr.cell[[ti, bi, j]]).abs() < 1e-5);
                        assert!((o * c.tanh() - tr.hidden[[ti, bi, j]]).abs() < 1e-5);
                    }
                } else {
                    assert!(
                        tr.input.slice(s![ti, bi, ..]).iter().all(|&v| v == 0.0),
                        "zero past the length"
                    );
                }
            }
        }
    }
    let top = rec.traces[2]
        .hidden
        .slice(s![lens[1] - 1, 1, ..])
        .to_owned();
    assert_eq!(
        top,
        out.h_n.slice(s![2, 1, ..]),
        "the last step's state is h_n"
    );
}

#[test]
fn record_gates_rejects_bad_input() {
    let cfg = LstmConfig::new(4, 3);
    let w = LstmWeights::init(&cfg, 0).unwrap();
    let x = random((5, 2, 3), 0);
    let err = record_gates(&w, x.view(), ForwardOptions::default()).unwrap_err();
    assert!(matches!(err, LstmError::Shape { .. }), "{err}");
}

fn small_classifier(hidden: usize) -> ClassifierParams {
    let cfg = LstmConfig::new(28, hidden).batch_first(true);
    ClassifierParams::init(&cfg, 10, 1.0, 3).unwrap()
}

fn logit(p: &ClassifierParams, x: &Array2<f32>, class: usize) -> f32 {
    let f = final_features(p, x.view().insert_axis(Axis(0))).unwrap();
    f.row(0).dot(&p.dense.weight.row(class)) + p.dense.bias[class]
}

#[test]
fn attribution_is_gradient_times_input() {
    let p = small_classifier(16);
    let x = random((28, 28), 5).mapv(|v| 0.5 + 0.5 * v);
    let a = attribution(&p, x.view(), 4, None).unwrap();
    assert_eq!(a.dim(), (28, 28));
    for &(r, c) in &[(3, 4), (14, 14), (27, 0), (20, 9)] {
        let eps = 1e-2;
        let (mut up, mut down) = (x.clone(), x.clone());
        up[[r, c]] += eps;
        down[[r, c]] -= eps;
        let fd = (logit(&p, &up, 4) - logit(&p, &down, 4)) / (2.0 * eps) * x[[r, c]];
        assert!(
            (fd - a[[r, c]]).abs() < 2e-3 + 2e-2 * fd.abs(),
            "pixel ({r}, {c}): {} vs finite difference {fd}",
            a[[r, c]]
        );
    }
    if let Some(ctx) = shared_context() {
        let gpu = GpuLstm::new(ctx, &p.lstm).unwrap();
        let g = attribution(&p, x.view(), 4, Some(&gpu)).unwrap();
        assert_close("attribution GPU vs CPU", &g, &a, GRAD_ATOL, GRAD_RTOL);
    }
    assert!(
        attribution(&p, x.view(), 10, None).is_err(),
        "class past the classes"
    );
}

#[test]
fn unit_order_is_a_permutation_by_peak_step() {
    let a = ndarray::array![[0.0, 0.9, 0.0], [0.1, 0.0, -0.8], [0.5, 0.0, 0.0]];
    assert_eq!(unit_order(a.view()), vec![1, 2, 0]);
}

#[test]
fn class_selectivity_ranks_units() {
    let p = small_classifier(12);
    let x = random((40, 28, 28), 7).mapv(|v| v.abs());
    let labels: Vec<usize> = (0..40).map(|i| i % 10).collect();
    let sel = class_selectivity(&p, x.view(), &labels).unwrap();
    assert_eq!(sel.len(), 12);
    let mut units: Vec<usize> = sel.iter().map(|s| s.unit).collect();
    units.sort_unstable();
    assert_eq!(units, (0..12).collect::<Vec<_>>());
    assert!(sel.windows(2).all(|w| w[0].score.abs() >= w[1].score.abs()));
    assert!(class_selectivity(&p, x.view(), &labels[1..]).is_err());
}

#[cfg(feature = "plot")]
#[test]
fn inspect_figure_png() {
    use lstm_wgpu::apps::inspect_figure::{inspect_figure, inspect_size, InspectPanels};
    let p = small_classifier(32);
    let data = lstm_wgpu::data::load_bundled_mnist().unwrap();
    let digit = data.images.index_axis(Axis(0), 0).to_owned();
    let rec = record_gates(
        &p.lstm,
        digit.view().insert_axis(Axis(0)),
        ForwardOptions::default(),
    )
    .unwrap();
    let a = attribution(&p, digit.view(), 3, None).unwrap();
    let tr = &rec.traces[0];
    let order = unit_order(tr.hidden.index_axis(Axis(1), 0));
    let panels = InspectPanels {
        digit: digit.view(),
        attribution: a.view(),
        trace: tr,
        index: 0,
        order: &order,
        title: "test",
    };
    let img = inspect_figure(&panels).unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-tests");
    let path = dir.join("inspect.png");
    lstm_wgpu::apps::render::save_png(&img, &path).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), inspect_size(28, 28, 32));
    let mut colours: Vec<[u8; 3]> = back.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 200,
        "heatmaps drawn: {} colours",
        colours.len()
    );
    let bad = InspectPanels {
        order: &order[1..],
        ..panels
    };
    assert!(
        inspect_figure(&bad).is_err(),
        "an order that is not a permutation"
    );
}

/// The command end to end on an untrained classifier checkpoint.
#[cfg(feature = "cli")]
#[test]
fn inspect_command() {
    use lstm_wgpu::apps::inspect_figure::inspect_size;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("clf.safetensors");
    lstm_wgpu::train::save_checkpoint(&ckpt, &small_classifier(20)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args([
            "inspect",
            "--index",
            "3",
            "--device",
            "cpu",
            "--top",
            "4",
            "--weights",
        ])
        .arg(&ckpt)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("most class-selective units"), "{text}");
    let img = image::open(dir.join("digit_3.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), inspect_size(28, 28, 20));
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["inspect", "--weights"])
        .arg(dir.join("none.safetensors"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("train the classifier first"));
}

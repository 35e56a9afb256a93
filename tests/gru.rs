//! The GRU on the CPU against PyTorch's `torch.nn.GRU` (forward and autograd values,
//! `scripts/make_gru_fixtures.py`, files in tests/fixtures/torch_gru), its gradients
//! against finite differences in both reset modes, and its input checks.

mod common;

use std::path::PathBuf;

use common::*;
use lstm_wgpu::cpu::{self, GruUpstream};
use lstm_wgpu::interop::{tensors::TensorMap, torch, torch_gru};
use lstm_wgpu::{GruConfig, GruOptions, GruWeights};
use ndarray::{Array3, ArrayD, Ix3};

const CASES: [&str; 5] = [
    "one_layer_init_state",
    "two_layer_bidir_batch_first",
    "no_bias",
    "var_lengths_bidir",
    "single_step",
];

fn fixture(case: &str) -> TensorMap {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_gru")
        .join(format!("{case}.safetensors"));
    TensorMap::read_safetensors(&path).unwrap()
}

fn arr3(map: &TensorMap, name: &str) -> Option<Array3<f32>> {
    map.tensors
        .get(name)
        .map(|t| t.clone().into_dimensionality::<Ix3>().unwrap())
}

fn lens(map: &TensorMap) -> Option<Vec<usize>> {
    map.tensors
        .get("lengths")
        .map(|l| l.iter().map(|&v| v as usize).collect())
}

fn weights(map: &TensorMap) -> GruWeights {
    let mut w = torch_gru::gru_from_tensors(map, "").unwrap();
    w.config.batch_first = map.metadata["batch_first"] == "true";
    assert_eq!(
        w.config.hidden_size.to_string(),
        map.metadata["hidden_size"]
    );
    assert_eq!(w.config.num_layers.to_string(), map.metadata["num_layers"]);
    w
}

fn assert_dyn(what: &str, got: ArrayD<f32>, want: &ArrayD<f32>, tol: f32) {
    assert_close(what, &got, want, tol, tol);
}

#[test]
fn cpu_forward_and_gradients_match_pytorch() {
    for case in CASES {
        let f = fixture(case);
        let w = weights(&f);
        let (x, h0, lens) = (arr3(&f, "x").unwrap(), arr3(&f, "h0"), lens(&f));
        let opts = GruOptions {
            initial: h0.as_ref(),
            seq_lens: lens.as_deref(),
        };
        let (out, cache) = cpu::gru_forward_train(&w, x.view(), opts).unwrap();
        assert_close(
            &format!("{case} y"),
            &out.y,
            &arr3(&f, "y").unwrap(),
            TORCH_ATOL,
            TORCH_RTOL,
        );
        assert_close(
            &format!("{case} h_n"),
            &out.h_n,
            &arr3(&f, "h_n").unwrap(),
            TORCH_ATOL,
            TORCH_RTOL,
        );

        let (gy, gh) = (arr3(&f, "gy").unwrap(), arr3(&f, "gh_n").unwrap());
        let up = GruUpstream {
            dy: Some(gy.view()),
            dh_n: Some(gh.view()),
        };
        let g = cpu::gru_backward(&w, &cache, up).unwrap();
        assert_dyn(
            &format!("{case} dx"),
            g.dx.into_dyn(),
            &f.tensors["grad.x"],
            1e-4,
        );
        if let Some(want) = f.tensors.get("grad.h0") {
            assert_dyn(&format!("{case} dh0"), g.dh0.into_dyn(), want, 1e-4);
        }
        let mut grads = TensorMap::default();
        let mut params = g.params.clone();
        params.config.batch_first = false;
        torch_gru::gru_to_tensors(&params, "grad.", &mut grads).unwrap();
        assert_eq!(
            grads.tensors.len(),
            f.tensors
                .keys()
                .filter(|k| k.starts_with("grad.") && k.contains("_l"))
                .count()
        );
        for (name, got) in grads.tensors {
            assert_dyn(&format!("{case} {name}"), got, &f.tensors[&name], 1e-4);
        }
    }
}

#[test]
fn gru_tensors_are_not_an_lstm() {
    let f = fixture("one_layer_init_state");
    let err = torch::from_tensors(&f, "").unwrap_err().to_string();
    assert!(err.contains("[4H, I]"), "{err}");
}

/// A state dict keeps `reset_after` in its metadata (PyTorch files, without it, read as
/// PyTorch's form); a value other than true/false is an error, not a guess.
#[test]
fn reset_after_survives_a_state_dict() {
    for reset_after in [true, false] {
        let w = GruWeights::init(&GruConfig::new(3, 4).reset_after(reset_after), 2).unwrap();
        let mut map = TensorMap::default();
        torch_gru::gru_to_tensors(&w, "gru.", &mut map).unwrap();
        let back = torch_gru::gru_from_tensors(&map, "gru.").unwrap();
        assert_eq!(back.config.reset_after, reset_after);
        assert_eq!(back, w);
        map.metadata.remove("reset_after");
        assert!(
            torch_gru::gru_from_tensors(&map, "gru.")
                .unwrap()
                .config
                .reset_after
        );
        map.metadata.insert("reset_after".into(), "maybe".into());
        let err = torch_gru::gru_from_tensors(&map, "gru.")
            .unwrap_err()
            .to_string();
        assert!(err.contains("reset_after"), "{err}");
    }
}

/// One parameter tensor of a layer-direction, as a flat slice (`None`: absent bias).
type Field = fn(&mut lstm_wgpu::GruLayerWeights) -> Option<&mut [f32]>;

/// `L = Σ y·gy + Σ h_n·gh` for fixed random upstream values.
struct Probe {
    x: Array3<f32>,
    h0: Array3<f32>,
    lens: Vec<usize>,
    gy: Array3<f32>,
    gh: Array3<f32>,
}

impl Probe {
    fn new(cfg: &GruConfig, t: usize, b: usize, seed: u64) -> Probe {
        let lens: Vec<usize> = (0..b).map(|i| t - (i % t)).collect();
        let ld = cfg.num_layers * cfg.num_directions();
        let shape_x = if cfg.batch_first {
            (b, t, cfg.input_size)
        } else {
            (t, b, cfg.input_size)
        };
        let shape_y = (shape_x.0, shape_x.1, cfg.output_size());
        Probe {
            x: random(shape_x, seed),
            h0: random((ld, b, cfg.hidden_size), seed + 1),
            lens,
            gy: random(shape_y, seed + 2),
            gh: random((ld, b, cfg.hidden_size), seed + 3),
        }
    }
    fn opts(&self) -> GruOptions<'_> {
        GruOptions {
            initial: Some(&self.h0),
            seq_lens: Some(&self.lens),
        }
    }
    fn loss(&self, w: &GruWeights, x: &Array3<f32>, h0: &Array3<f32>) -> f64 {
        let opts = GruOptions {
            initial: Some(h0),
            seq_lens: Some(&self.lens),
        };
        let out = cpu::gru_forward(w, x.view(), opts).unwrap();
        let dot = |a: &Array3<f32>, b: &Array3<f32>| {
            a.iter()
                .zip(b)
                .map(|(&p, &q)| p as f64 * q as f64)
                .sum::<f64>()
        };
        dot(&out.y, &self.gy) + dot(&out.h_n, &self.gh)
    }
}

/// Central differences of every parameter, input and initial-state element against
/// the analytic gradients.
fn check_finite_differences(cfg: GruConfig, seed: u64) {
    let w = GruWeights::init(&cfg, seed).unwrap();
    let p = Probe::new(&cfg, 4, 3, seed);
    let (_, cache) = cpu::gru_forward_train(&w, p.x.view(), p.opts()).unwrap();
    let up = GruUpstream {
        dy: Some(p.gy.view()),
        dh_n: Some(p.gh.view()),
    };
    let g = cpu::gru_backward(&w, &cache, up).unwrap();
    let eps = 1e-2f32;
    let close = |name: &str, fd: f64, an: f32| {
        assert!(
            (fd - an as f64).abs() <= 2e-3 + 2e-2 * fd.abs(),
            "{name}: finite difference {fd}, analytic {an}"
        );
    };
    for ld in 0..w.layers.len() {
        let fields: [(&str, Field); 4] = [
            ("w_ih", |l| l.w_ih.as_slice_mut()),
            ("w_hh", |l| l.w_hh.as_slice_mut()),
            ("b_ih", |l| l.b_ih.as_mut().and_then(|b| b.as_slice_mut())),
            ("b_hh", |l| l.b_hh.as_mut().and_then(|b| b.as_slice_mut())),
        ];
        for (name, field) in fields {
            let mut an_layer = g.params.layers[ld].clone();
            let Some(an) = field(&mut an_layer).map(|s| s.to_vec()) else {
                continue;
            };
            for (k, &a) in an.iter().enumerate() {
                let shifted = |delta: f32| {
                    let mut v = w.clone();
                    field(&mut v.layers[ld]).unwrap()[k] += delta;
                    p.loss(&v, &p.x, &p.h0)
                };
                let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
                close(&format!("layer-direction {ld} {name}[{k}]"), fd, a);
            }
        }
    }
    for (name, base, an) in [("x", &p.x, &g.dx), ("h0", &p.h0, &g.dh0)] {
        for k in 0..base.len() {
            let shifted = |delta: f32| {
                let mut v = base.clone();
                v.as_slice_mut().unwrap()[k] += delta;
                if name == "x" {
                    p.loss(&w, &v, &p.h0)
                } else {
                    p.loss(&w, &p.x, &v)
                }
            };
            let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
            close(&format!("{name}[{k}]"), fd, an.as_slice().unwrap()[k]);
        }
    }
}

#[test]
fn gradients_match_finite_differences_reset_after() {
    check_finite_differences(GruConfig::new(3, 5).layers(2).bidirectional(true), 21);
}

#[test]
fn gradients_match_finite_differences_reset_before() {
    check_finite_differences(
        GruConfig::new(3, 5)
            .layers(2)
            .bidirectional(true)
            .reset_after(false),
        22,
    );
    check_finite_differences(
        GruConfig::new(2, 3)
            .bias(false)
            .batch_first(true)
            .reset_after(false),
        23,
    );
}

#[test]
fn bad_inputs_are_errors() {
    let w = GruWeights::init(&GruConfig::new(3, 4).layers(2), 1).unwrap();
    let x = random((5, 2, 3), 1);
    let wrong_h0 = random((1, 2, 4), 2);
    let cases: [(GruOptions, &str); 3] = [
        (
            GruOptions {
                initial: Some(&wrong_h0),
                seq_lens: None,
            },
            "h_0",
        ),
        (
            GruOptions {
                initial: None,
                seq_lens: Some(&[5, 0]),
            },
            "seq_lens[1]",
        ),
        (
            GruOptions {
                initial: None,
                seq_lens: Some(&[5]),
            },
            "seq_lens",
        ),
    ];
    for (opts, want) in cases {
        let err = cpu::gru_forward(&w, x.view(), opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    let err = cpu::gru_forward(&w, random((5, 2, 4), 3).view(), GruOptions::default()).unwrap_err();
    assert!(err.to_string().contains("input_size 3"), "{err}");
    let mut nan = x.clone();
    nan[[1, 1, 1]] = f32::NAN;
    assert!(cpu::gru_forward(&w, nan.view(), GruOptions::default()).is_err());
    let mut bad = w.clone();
    bad.layers[1].w_hh = random((12, 5), 4);
    let err = cpu::gru_forward(&bad, x.view(), GruOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("weight_hh_l1"), "{err}");
}

/// The schedule's fast step (packed GEMM from B = 5 on) against the readable twin
/// `cpu::gru_step`, step by step, in both reset modes.
#[test]
fn sequence_forward_equals_the_step_twin() {
    for reset_after in [true, false] {
        for b in [1, 6] {
            let cfg = GruConfig::new(4, 9).reset_after(reset_after);
            let w = GruWeights::init(&cfg, 70 + b as u64).unwrap();
            let l = &w.layers[0];
            let x: Array3<f32> = random((5, b, 4), 71);
            let out = cpu::gru_forward(&w, x.view(), GruOptions::default()).unwrap();
            let bias = cpu::gru_step::input_bias(l, reset_after);
            let b_hn = cpu::gru_step::recurrent_n_bias(l, reset_after);
            let mut h = ndarray::Array2::<f32>::zeros((b, 9));
            for t in 0..5 {
                let gx = x.index_axis(ndarray::Axis(0), t).dot(&l.w_ih.t()) + &bias;
                h = cpu::gru_step(gx.view(), h.view(), l.w_hh.view(), b_hn.view(), reset_after).0;
                let y = out.y.index_axis(ndarray::Axis(0), t).to_owned();
                assert_close(
                    &format!("reset_after={reset_after} B={b} t={t}"),
                    &y,
                    &h,
                    1e-5,
                    1e-5,
                );
            }
        }
    }
}

//! The LSTM with a projection (`nn.LSTM(proj_size = P)`) on the CPU against PyTorch's
//! forward and autograd (`scripts/make_lstmp_fixtures.py`, tests/fixtures/torch_lstmp),
//! its state-dict import/export, and its input checks.

mod common;

use std::path::PathBuf;

use common::*;
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::interop::{tensors::TensorMap, torch, torch_lstmp};
use lstm_wgpu::{ForwardOptions, LstmState, LstmpConfig, LstmpWeights};
use ndarray::{Array3, Ix3};

const CASES: [&str; 3] = [
    "one_layer_init_state",
    "two_layer_bidir_lengths",
    "batch_first_no_bias",
];

fn fixture(case: &str) -> TensorMap {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/torch_lstmp/{case}.safetensors"));
    TensorMap::read_safetensors(&path).unwrap()
}

fn arr3(map: &TensorMap, name: &str) -> Option<Array3<f32>> {
    map.tensors
        .get(name)
        .map(|t| t.clone().into_dimensionality::<Ix3>().unwrap())
}

#[test]
fn cpu_forward_and_gradients_match_pytorch() {
    for case in CASES {
        let f = fixture(case);
        assert!(torch_lstmp::is_lstmp(&f, ""));
        let mut w = torch_lstmp::lstmp_from_tensors(&f, "").unwrap();
        w.config.batch_first = f.metadata["batch_first"] == "true";
        let x = arr3(&f, "x").unwrap();
        let init = arr3(&f, "h0").map(|h| LstmState {
            h,
            c: arr3(&f, "c0").unwrap(),
        });
        let lens: Option<Vec<usize>> = f
            .tensors
            .get("lengths")
            .map(|l| l.iter().map(|&v| v as usize).collect());
        let opts = ForwardOptions {
            initial: init.as_ref(),
            seq_lens: lens.as_deref(),
        };
        let (out, cache) = cpu::lstmp_forward_train(&w, x.view(), opts).unwrap();
        for (name, got) in [("y", &out.y), ("h_n", &out.h_n), ("c_n", &out.c_n)] {
            assert_close(
                &format!("{case} {name}"),
                got,
                &arr3(&f, name).unwrap(),
                TORCH_ATOL,
                TORCH_RTOL,
            );
        }
        let (gy, gh, gc) = (
            arr3(&f, "gy").unwrap(),
            arr3(&f, "gh_n").unwrap(),
            arr3(&f, "gc_n").unwrap(),
        );
        let up = Upstream {
            dy: Some(gy.view()),
            dh_n: Some(gh.view()),
            dc_n: Some(gc.view()),
        };
        let g = cpu::lstmp_backward(&w, &cache, up).unwrap();
        let close = |name: &str, got: &Array3<f32>| {
            let want = arr3(&f, &format!("grad.{name}")).unwrap();
            assert_close(&format!("{case} d{name}"), got, &want, 1e-4, 1e-4);
        };
        close("x", &g.dx);
        if init.is_some() {
            close("h0", &g.dh0);
            close("c0", &g.dc0);
        }
        let mut params = g.params.clone();
        params.config.batch_first = false;
        let mut grads = TensorMap::default();
        torch_lstmp::lstmp_to_tensors(&params, "grad.", &mut grads).unwrap();
        let expected = f
            .tensors
            .keys()
            .filter(|k| k.starts_with("grad.") && k.contains("_l"))
            .count();
        assert_eq!(grads.tensors.len(), expected, "{case}");
        for (name, got) in grads.tensors {
            assert_close(
                &format!("{case} {name}"),
                &got,
                &f.tensors[&name],
                1e-4,
                1e-4,
            );
        }
    }
}

#[test]
fn export_round_trips_and_is_not_a_plain_lstm() {
    let f = fixture("two_layer_bidir_lengths");
    let w = torch_lstmp::lstmp_from_tensors(&f, "").unwrap();
    let mut map = TensorMap::default();
    torch_lstmp::lstmp_to_tensors(&w, "lstm.", &mut map).unwrap();
    assert_eq!(torch_lstmp::lstmp_from_tensors(&map, "lstm.").unwrap(), w);
    let err = torch::from_tensors(&f, "").unwrap_err().to_string();
    assert!(err.contains("weight_hh_l0"), "{err}");
}

#[test]
fn bad_inputs_are_errors() {
    assert!(
        LstmpWeights::init(&LstmpConfig::new(3, 4, 4), 1).is_err(),
        "P must be below H"
    );
    assert!(LstmpWeights::init(&LstmpConfig::new(3, 4, 0), 1).is_err());
    let w = LstmpWeights::init(&LstmpConfig::new(3, 6, 2).layers(2), 1).unwrap();
    let x: Array3<f32> = random((5, 2, 3), 2);
    let (h_bad, c): (Array3<f32>, Array3<f32>) = (random((2, 2, 6), 3), random((2, 2, 6), 4));
    let s = LstmState { h: h_bad, c };
    let err = cpu::lstmp_forward(
        &w,
        x.view(),
        ForwardOptions {
            initial: Some(&s),
            seq_lens: None,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("h_0"), "{err}");
    let err =
        cpu::lstmp_forward(&w, random((5, 2, 4), 5).view(), ForwardOptions::default()).unwrap_err();
    assert!(err.to_string().contains("input_size 3"), "{err}");
    let mut bad = w.clone();
    bad.layers[1].w_hr = random((3, 6), 6);
    let err = cpu::lstmp_forward(&bad, x.view(), ForwardOptions::default()).unwrap_err();
    assert!(err.to_string().contains("weight_hr_l1"), "{err}");
}

//! Bad input gets a clear error, never a panic or a wrong answer.

mod common;

use std::sync::Arc;

use common::*;
use lstm_wgpu::interop::{tensors::TensorMap, torch};
use lstm_wgpu::{
    cpu, ForwardOptions, GpuContext, GpuLstm, GpuOptions, GpuSequence, LstmConfig, LstmError,
    LstmState, LstmWeights,
};
use ndarray::Array3;

fn msg<T>(r: Result<T, LstmError>) -> (LstmError, String) {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let s = e.to_string();
            (e, s)
        }
    }
}

#[test]
fn zero_sizes_in_config() {
    for cfg in [
        LstmConfig::new(0, 4),
        LstmConfig::new(3, 0),
        LstmConfig::new(3, 4).layers(0),
    ] {
        let (e, s) = msg(LstmWeights::init(&cfg, 0));
        assert!(matches!(e, LstmError::Config(_)), "{e:?}");
        assert!(s.contains("must be at least 1"), "{s}");
    }
}

/// One bad forward call: its input, options and a text the error must contain.
struct BadCall {
    name: &'static str,
    x: Array3<f32>,
    initial: Option<LstmState>,
    seq_lens: Option<Vec<usize>>,
    needle: &'static str,
}

fn bad(name: &'static str, x: Array3<f32>, needle: &'static str) -> BadCall {
    BadCall {
        name,
        x,
        initial: None,
        seq_lens: None,
        needle,
    }
}

/// Every shape/value mistake for a 2-layer LSTM(3 → 4) on `[T = 5, B = 2, 3]`.
fn bad_calls() -> Vec<BadCall> {
    let good_x = random((5, 2, 3), 2);
    let state = |shape: (usize, usize, usize)| LstmState {
        h: random(shape, 3),
        c: random(shape, 4),
    };
    let with_state = |name, shape| BadCall {
        initial: Some(state(shape)),
        ..bad(name, good_x.clone(), "[2, 2, 4]")
    };
    let with_lens = |name, lens: &[usize], needle| BadCall {
        seq_lens: Some(lens.to_vec()),
        ..bad(name, good_x.clone(), needle)
    };
    let mut nan_x = good_x.clone();
    nan_x[[1, 1, 1]] = f32::NAN;
    vec![
        bad("input width", random((5, 2, 4), 5), "input_size 3"),
        bad("zero T", Array3::zeros((0, 2, 3)), "T ≥ 1"),
        bad("zero B", Array3::zeros((5, 0, 3)), "B ≥ 1"),
        with_state("h0 batch", (2, 3, 4)),  // batch 3, not 2
        with_state("h0 layers", (1, 2, 4)), // 1 layer, not 2
        with_lens("len 0", &[0, 5], "outside 1..=5"),
        with_lens("len > T", &[5, 6], "outside 1..=5"),
        with_lens("len count", &[5], "one per batch element"),
        bad("NaN input", nan_x, "NaN"),
    ]
}

/// Every shape/value mistake, checked on the CPU path and (when there is one) the GPU path.
#[test]
fn bad_inputs_on_both_paths() {
    let cfg = LstmConfig::new(3, 4).layers(2);
    let w = LstmWeights::init(&cfg, 1).unwrap();
    let gpu = shared_context().map(|ctx| GpuLstm::new(ctx, &w).unwrap());
    for c in bad_calls() {
        let opts = ForwardOptions {
            initial: c.initial.as_ref(),
            seq_lens: c.seq_lens.as_deref(),
        };
        let (_, s) = msg(cpu::forward(&w, c.x.view(), opts));
        assert!(s.contains(c.needle), "cpu {}: {s}", c.name);
        if let Some(g) = &gpu {
            let (_, s) = msg(g.forward(c.x.view(), opts));
            assert!(s.contains(c.needle), "gpu {}: {s}", c.name);
        }
    }
}

#[test]
fn weights_that_do_not_match_their_config() {
    let cfg = LstmConfig::new(3, 4).layers(2);
    let mut w = LstmWeights::init(&cfg, 1).unwrap();
    w.layers.pop();
    let (_, s) = msg(w.validate());
    assert!(s.contains("layer-direction count"), "{s}");
    let mut w = LstmWeights::init(&cfg, 1).unwrap();
    w.layers[1].w_hh = random((16, 5), 1);
    let (_, s) = msg(cpu::forward(
        &w,
        random((2, 1, 3), 2).view(),
        ForwardOptions::default(),
    ));
    assert!(
        s.contains("weight_hh_l1") && s.contains("[16, 4]") && s.contains("[16, 5]"),
        "{s}"
    );
    let mut w = LstmWeights::init(&cfg, 1).unwrap();
    w.layers[0].w_ih[[0, 0]] = f32::INFINITY;
    if let Some(ctx) = shared_context() {
        let (_, s) = msg(GpuLstm::new(ctx, &w));
        assert!(s.contains("inf"), "{s}");
    }
}

#[test]
fn beyond_device_limits() {
    let Some(mut ctx) = try_context() else { return };
    ctx.set_max_binding_bytes(1024);
    let ctx = Arc::new(ctx);
    // W_ih of 4·16 × 8 floats = 2 KiB > 1 KiB.
    let (e, s) = msg(GpuLstm::new(
        ctx.clone(),
        &LstmWeights::init(&LstmConfig::new(8, 16), 0).unwrap(),
    ));
    assert!(
        matches!(e, LstmError::DeviceLimit(_)) && s.contains("weight_ih"),
        "{s}"
    );
    // Weights fit, but one time step of batch 64 (4H·B·4 bytes = 4 KiB) does not.
    let gpu = GpuLstm::new(
        ctx.clone(),
        &LstmWeights::init(&LstmConfig::new(2, 4), 0).unwrap(),
    )
    .unwrap();
    let (e, s) = msg(gpu.forward(random((3, 64, 2), 1).view(), ForwardOptions::default()));
    assert!(
        matches!(e, LstmError::DeviceLimit(_)) && s.contains("one time step"),
        "{s}"
    );
}

#[test]
fn no_matching_adapter() {
    let opts = GpuOptions {
        adapter_name: Some("no-such-adapter-anywhere".into()),
        ..Default::default()
    };
    let (e, s) = msg(GpuContext::with_options(&opts));
    assert!(
        matches!(e, LstmError::NoAdapter(_)) && s.contains("no-such-adapter-anywhere"),
        "{s}"
    );
}

#[test]
fn resident_sequence_of_wrong_size() {
    let Some(ctx) = shared_context() else { return };
    let gpu = GpuLstm::new(ctx, &LstmWeights::init(&LstmConfig::new(3, 4), 0).unwrap()).unwrap();
    let seq = gpu.upload_sequence(random((2, 2, 3), 0).view()).unwrap();
    let lying = GpuSequence {
        buffer: seq.buffer,
        t: 20,
        b: 2,
        features: 3,
    };
    let (_, s) = msg(gpu.forward_resident(&lying, None, None));
    assert!(s.contains("GPU sequence buffer"), "{s}");
}

#[test]
fn corrupt_and_truncated_weight_files() {
    let mut map = TensorMap::default();
    torch::to_tensors(
        &LstmWeights::init(&LstmConfig::new(3, 4), 0).unwrap(),
        "",
        &mut map,
    )
    .unwrap();
    let bytes = map.to_safetensors_bytes().unwrap();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let (e, _) = msg(TensorMap::from_safetensors_bytes(&bytes[..cut]));
        assert!(
            matches!(e, LstmError::SafeTensors(_)),
            "truncated at {cut}: {e:?}"
        );
    }
    let mut garbage = bytes.clone();
    garbage[9] = b'!';
    assert!(TensorMap::from_safetensors_bytes(&garbage).is_err());
    // A missing or misshaped tensor names itself and both shapes.
    let mut missing = map.clone();
    missing.tensors.remove("bias_hh_l0");
    let (_, s) = msg(torch::from_tensors(&missing, ""));
    assert!(s.contains("bias_hh_l0") && s.contains("missing"), "{s}");
    let mut misshaped = map.clone();
    misshaped
        .tensors
        .insert("bias_hh_l0".into(), ndarray::ArrayD::zeros(vec![15]));
    let (_, s) = msg(torch::from_tensors(&misshaped, ""));
    assert!(
        s.contains("bias_hh_l0") && s.contains("[16]") && s.contains("[15]"),
        "{s}"
    );
    let (_, s) = msg(torch::from_tensors(&map, "lstm."));
    assert!(s.contains("lstm.weight_ih_l0"), "{s}");
}

/// Arrays in any memory order (here a transposed initial state) are accepted, not a panic.
#[test]
fn non_standard_layout_initial_state() {
    let cfg = LstmConfig::new(3, 4);
    let w = LstmWeights::init(&cfg, 1).unwrap();
    let x = random((5, 2, 3), 2);
    let h = random((4, 2, 1), 3).permuted_axes([2, 1, 0]);
    let c = random((4, 2, 1), 4).permuted_axes([2, 1, 0]);
    let s = LstmState { h, c };
    let opts = ForwardOptions {
        initial: Some(&s),
        seq_lens: None,
    };
    let want = cpu::forward(&w, x.view(), opts).unwrap();
    if let Some(ctx) = shared_context() {
        let got = GpuLstm::new(ctx, &w)
            .unwrap()
            .forward(x.view(), opts)
            .unwrap();
        assert_close("y", &got.y, &want.y, GPU_ATOL, GPU_RTOL);
    }
}

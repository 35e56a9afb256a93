//! The CPU reference (and the GPU path) against values produced by PyTorch's own
//! `torch.nn.LSTM` (`scripts/make_torch_fixtures.py`, files in tests/fixtures/torch).

mod common;

use std::path::PathBuf;

use common::*;
use lstm_wgpu::interop::{tensors::TensorMap, torch};
use lstm_wgpu::{cpu, ForwardOptions, GpuLstm, LstmConfig, LstmOutput, LstmState};
use ndarray::{Array3, Ix3};

const CASES: [&str; 7] = [
    "one_layer_init_state",
    "two_layer_bidir",
    "three_layer_bidir_batch_first",
    "no_bias",
    "var_lengths",
    "var_lengths_bidir",
    "single_step",
];

struct Fixture {
    map: TensorMap,
}

impl Fixture {
    fn load(case: &str) -> Fixture {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/torch")
            .join(format!("{case}.safetensors"));
        Fixture {
            map: TensorMap::read_safetensors(&path).unwrap(),
        }
    }
    fn arr3(&self, name: &str) -> Option<Array3<f32>> {
        self.map
            .tensors
            .get(name)
            .map(|t| t.clone().into_dimensionality::<Ix3>().unwrap())
    }
    fn meta(&self, key: &str) -> &str {
        &self.map.metadata[key]
    }
}

/// The inferred config agrees with what PyTorch was constructed with.
fn assert_config_matches(case: &str, c: &LstmConfig, f: &Fixture) {
    assert_eq!(c.input_size.to_string(), f.meta("input_size"), "{case}");
    assert_eq!(c.hidden_size.to_string(), f.meta("hidden_size"), "{case}");
    assert_eq!(c.num_layers.to_string(), f.meta("num_layers"), "{case}");
    assert_eq!(
        c.bidirectional.to_string(),
        f.meta("bidirectional"),
        "{case}"
    );
    assert_eq!(c.bias.to_string(), f.meta("bias"), "{case}");
}

/// `y`, `h_n` and `c_n` of `out` against PyTorch's, each under `{what} y` etc.
fn assert_outputs_match(what: &str, out: &LstmOutput, f: &Fixture, atol: f32, rtol: f32) {
    for (name, got) in [("y", &out.y), ("h_n", &out.h_n), ("c_n", &out.c_n)] {
        let want = f.arr3(name).unwrap();
        assert_close(&format!("{what} {name}"), got, &want, atol, rtol);
    }
}

#[test]
fn cpu_and_gpu_match_pytorch() {
    let ctx = shared_context();
    for case in CASES {
        let f = Fixture::load(case);
        let mut w = torch::from_tensors(&f.map, "").unwrap();
        w.config.batch_first = f.meta("batch_first") == "true";
        assert_config_matches(case, &w.config, &f);

        let x = f.arr3("x").unwrap();
        let init = f.arr3("h0").map(|h| LstmState {
            h,
            c: f.arr3("c0").unwrap(),
        });
        let lens: Option<Vec<usize>> = f
            .map
            .tensors
            .get("lengths")
            .map(|l| l.iter().map(|&v| v as usize).collect());
        let opts = ForwardOptions {
            initial: init.as_ref(),
            seq_lens: lens.as_deref(),
        };

        let out = cpu::forward(&w, x.view(), opts).unwrap();
        assert_outputs_match(&format!("{case}: cpu"), &out, &f, TORCH_ATOL, TORCH_RTOL);

        if let Some(ctx) = &ctx {
            let out = GpuLstm::new(ctx.clone(), &w)
                .unwrap()
                .forward(x.view(), opts)
                .unwrap();
            assert_outputs_match(&format!("{case}: gpu"), &out, &f, GPU_ATOL, GPU_RTOL);
        }
    }
}

#[test]
fn export_round_trips() {
    let f = Fixture::load("two_layer_bidir");
    let w = torch::from_tensors(&f.map, "").unwrap();
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    torch::save_safetensors(&w, &path).unwrap();
    let back = torch::load_safetensors(&path, "").unwrap();
    assert_eq!(back, w);
    std::fs::remove_dir_all(dir).ok();
}

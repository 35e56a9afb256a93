//! The importers against outputs of PyTorch, Keras and ONNX Runtime themselves
//! (`scripts/make_interop_fixtures.py`, files in tests/fixtures/interop), and export to
//! PyTorch's names. The `forward` command on the same fixtures is in tests/interop_cli.rs.

mod common;
mod interop_common;

use common::*;
use interop_common::*;
use lstm_wgpu::interop::torch;
use lstm_wgpu::{cpu, ForwardOptions, GpuLstm};

#[test]
fn importers_match_each_framework_on_cpu_and_gpu() {
    let ctx = shared_context();
    for case in &CASES {
        let w = import(case);
        let e = expected(case);
        // Outputs past a sequence's length are zero: a real check needs non-zero ones.
        assert!(e.out.y.iter().any(|&v| v.abs() > 0.1), "{}", case.name);
        let opts = ForwardOptions {
            initial: e.initial.as_ref(),
            seq_lens: e.lens.as_deref(),
        };
        let out = cpu::forward(&w, e.x.view(), opts).unwrap();
        let cpu_err = check(
            &format!("{} cpu", case.name),
            &out,
            &e.out,
            TORCH_ATOL,
            TORCH_RTOL,
        );
        let gpu_err = ctx.as_ref().map(|ctx| {
            let out = GpuLstm::new(ctx.clone(), &w)
                .unwrap()
                .forward(e.x.view(), opts)
                .unwrap();
            check(
                &format!("{} gpu", case.name),
                &out,
                &e.out,
                GPU_ATOL,
                GPU_RTOL,
            )
        });
        eprintln!(
            "{}: max |crate - framework| cpu {cpu_err:.2e}, gpu {}",
            case.name,
            gpu_err.map_or("skipped".into(), |e| format!("{e:.2e}"))
        );
    }
}

/// Keras and ONNX weights saved as a PyTorch state dict load back unchanged and
/// still reproduce the framework's outputs. (The script checks the same files in
/// `torch.nn.LSTM.load_state_dict` itself.)
#[test]
fn export_to_pytorch_names_round_trips() {
    for name in ["keras_bidir", "onnx_bidir_no_bias", "onnx_peephole_lens"] {
        let case = CASES.iter().find(|c| c.name == name).unwrap();
        let w = import(case);
        let path = std::env::temp_dir().join(format!(
            "lstm-wgpu-export-{name}-{}.safetensors",
            std::process::id()
        ));
        torch::save_safetensors(&w, &path).unwrap();
        let mut back = torch::load_safetensors(&path, "").unwrap();
        std::fs::remove_file(&path).ok();
        back.config.batch_first = case.batch_first;
        assert_eq!(back, w, "{name}");
        let e = expected(case);
        let opts = ForwardOptions {
            initial: e.initial.as_ref(),
            seq_lens: e.lens.as_deref(),
        };
        let out = cpu::forward(&back, e.x.view(), opts).unwrap();
        check(name, &out, &e.out, TORCH_ATOL, TORCH_RTOL);
    }
}

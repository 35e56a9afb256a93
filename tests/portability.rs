//! Every shader the crate compiles translates with naga (the compiler inside wgpu) to
//! SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) and GLSL ES 3.1 (the GL backend): a
//! shader that only works on the backend CI runs would fail here, without any GPU.

use lstm_wgpu::gpu::kernels::shaders;
use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

fn parse(stem: &str, src: &str) -> (naga::Module, ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{stem}.wgsl: {}", e.emit_to_string(src)));
    // The f16-weight step unpacks f16 pairs: a capability (SHADER_F16_IN_F32) that
    // GpuLstm::new_f16 checks on the adapter. The step with subgroup shuffles and its
    // probe need subgroups (`Features::SUBGROUP`, which the context checks).
    let mut caps = Capabilities::default();
    if stem.ends_with("_f16") {
        caps |= Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    }
    if uses_subgroups(stem) {
        caps |= Capabilities::SUBGROUP;
    }
    let info = Validator::new(ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{stem}.wgsl does not validate: {}", e.emit_to_string(src)));
    (module, info)
}

fn uses_subgroups(stem: &str) -> bool {
    stem.starts_with("lanes_subgroup") || stem == "probe_subgroups"
}

#[test]
fn shaders_translate_to_spirv() {
    for (stem, src) in shaders() {
        let (module, info) = parse(stem, &src);
        let words = spv::write_vec(&module, &info, &spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{stem} → SPIR-V: {e}"));
        assert!(words.len() > 5, "{stem}: empty SPIR-V");
    }
}

#[test]
fn shaders_translate_to_msl() {
    let options = msl::Options {
        lang_version: (2, 1),
        ..Default::default()
    };
    for (stem, src) in shaders() {
        let (module, info) = parse(stem, &src);
        let (text, _) = msl::write_string(&module, &info, &options, &Default::default())
            .unwrap_or_else(|e| panic!("{stem} → MSL: {e}"));
        assert!(text.contains("kernel"), "{stem}: no kernel in the MSL");
    }
}

#[test]
fn shaders_translate_to_hlsl() {
    for (stem, src) in shaders() {
        let (module, info) = parse(stem, &src);
        let (options, pipeline) = (hlsl::Options::default(), hlsl::PipelineOptions::default());
        let mut text = String::new();
        hlsl::Writer::new(&mut text, &options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{stem} → HLSL: {e}"));
        assert!(
            text.contains("numthreads"),
            "{stem}: no entry point in the HLSL"
        );
    }
}

#[test]
fn shaders_translate_to_glsl_es() {
    for (stem, src) in shaders() {
        let (module, info) = parse(stem, &src);
        for ep in &module.entry_points {
            let pipeline = glsl::PipelineOptions {
                shader_stage: ep.stage,
                entry_point: ep.name.clone(),
                multiview: None,
            };
            let mut text = String::new();
            let options = glsl::Options::default(); // GLSL ES 3.1: wgpu's GL backend
            glsl::Writer::new(
                &mut text,
                &module,
                &info,
                &options,
                &pipeline,
                Default::default(),
            )
            .and_then(|mut w| w.write())
            .unwrap_or_else(|e| panic!("{stem}::{} → GLSL: {e}", ep.name));
            assert!(
                text.contains("void main"),
                "{stem}::{}: no main in the GLSL",
                ep.name
            );
        }
    }
}

/// The tests above cover every file in `shaders/` (`activations.wgsl`, `directions.wgsl`,
/// `recurrent_step.wgsl`, `recurrent_step_backward.wgsl`, `lanes_portable.wgsl` (in every
/// step module but those stemmed `lanes_subgroup`), `weights_*.wgsl` and
/// `state_*.wgsl` are parts of the step kernels, `matmul_operands_*.wgsl` of the GEMM's,
/// not compiled alone), so a new shader cannot be left out.
#[test]
fn every_shader_file_is_listed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".wgsl")
                .map(String::from)
        })
        .filter(|s| {
            let parts = [
                "activations",
                "directions",
                "recurrent_step",
                "recurrent_step_backward",
                "lanes_portable",
            ];
            let prefixes = ["weights_", "state_", "matmul_operands_"];
            !parts.contains(&s.as_str()) && !prefixes.iter().any(|p| s.starts_with(p))
        })
        .collect();
    files.sort();
    // `lstm_step_f16` is `lstm_step.wgsl` with `weights_f16.wgsl` for its weights
    // (`step_quads_f16` likewise).
    let mut listed: Vec<String> = shaders()
        .iter()
        .map(|(s, _)| s.trim_end_matches("_f16").to_string())
        .collect();
    listed.sort();
    listed.dedup();
    assert_eq!(files, listed);
}

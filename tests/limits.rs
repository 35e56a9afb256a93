//! The device requested at WebGPU's default limits runs every kernel (forward, backward,
//! training), matching the CPU path; at `downlevel_defaults` (GLES 3.1-class devices,
//! 4 storage buffers per stage) the kernels that need more are refused up front with an
//! error that names the kernel and the limit. The whole suite also runs at the WebGPU
//! limits in CI (`LSTM_GPU_LIMITS=webgpu`).

mod common;

use std::sync::Arc;

use common::{assert_close, random, random_input, GPU_ATOL, GPU_RTOL};
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::gpu::LimitsRequest;
use lstm_wgpu::{ForwardOptions, GpuContext, GpuLstm, GpuOptions, LstmConfig, LstmError};
use lstm_wgpu::{LstmWeights, Peephole};

fn context(limits: LimitsRequest) -> Option<GpuContext> {
    let opts = GpuOptions {
        limits: Some(limits),
        ..Default::default()
    };
    match GpuContext::with_options(&opts) {
        Ok(c) => Some(c),
        Err(e) => {
            // Same policy as common::try_context: loud skip, or a failure under CI.
            let required = std::env::var("LSTM_REQUIRE_GPU").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "LSTM_REQUIRE_GPU=1 but no adapter at {limits:?} limits: {e}"
            );
            eprintln!("!!!!! SKIPPING: no adapter at {limits:?} limits ({e}) !!!!!");
            None
        }
    }
}

#[test]
fn webgpu_default_limits_run_forward_and_backward() {
    let Some(ctx) = context(LimitsRequest::WebGpu) else {
        return;
    };
    assert_eq!(
        ctx.limits().max_storage_buffers_per_shader_stage,
        wgpu::Limits::default().max_storage_buffers_per_shader_stage
    );
    let cfg = LstmConfig::new(5, 33)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    let w = LstmWeights::init(&cfg, 3).unwrap();
    let x = random_input(&cfg, 7, 3, 4);
    let dy = random((7, 3, 66), 5);
    let up = Upstream {
        dy: Some(dy.view()),
        ..Default::default()
    };
    let gpu = GpuLstm::new(Arc::new(ctx), &w).unwrap();
    let (out, grads) = gpu
        .forward_backward(x.view(), ForwardOptions::default(), up)
        .unwrap();
    let (want, cache) = cpu::forward_train(&w, x.view(), ForwardOptions::default()).unwrap();
    let want_grads = cpu::backward(&w, &cache, up).unwrap();
    assert_close("y at WebGPU limits", &out.y, &want.y, GPU_ATOL, GPU_RTOL);
    assert_close(
        "dx at WebGPU limits",
        &grads.dx,
        &want_grads.dx,
        GPU_ATOL,
        GPU_RTOL,
    );
}

#[test]
fn downlevel_limits_refuse_with_the_limit_named() {
    let Some(ctx) = context(LimitsRequest::Downlevel) else {
        return;
    };
    let w = LstmWeights::init(&LstmConfig::new(4, 8), 1).unwrap();
    match GpuLstm::new(Arc::new(ctx), &w) {
        Err(LstmError::DeviceLimit(msg)) => {
            assert!(
                msg.contains("lstm_step") && msg.contains("max_storage_buffers_per_shader_stage"),
                "{msg}"
            );
        }
        Err(e) => panic!("expected a DeviceLimit error naming the limit, got {e}"),
        Ok(_) => {
            panic!("lstm_step binds 8 storage buffers; downlevel allows 4: it must be refused")
        }
    }
}

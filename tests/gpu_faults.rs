//! GPU faults are typed errors, never a panic or a hang: a lost device, an allocation
//! beyond the device's limits (for real, at WebGPU's limits, caught by wgpu's error
//! scopes), and an error that no scope caught.

mod common;

use std::sync::Arc;

use common::random_input;
use lstm_wgpu::gpu::{GpuOptions, LimitsRequest};
use lstm_wgpu::train::{Batch, ClassifierParams, Device, TrainConfig};
use lstm_wgpu::{ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmError, LstmWeights};

fn lstm(ctx: &Arc<GpuContext>) -> GpuLstm {
    let w = LstmWeights::init(&LstmConfig::new(3, 5), 1).unwrap();
    GpuLstm::new(ctx.clone(), &w).unwrap()
}

#[test]
fn a_lost_device_is_a_typed_error_for_every_later_call() {
    let Some(ctx) = common::try_context() else {
        return;
    };
    let ctx = Arc::new(ctx);
    let (model, x) = (lstm(&ctx), random_input(&LstmConfig::new(3, 5), 4, 2, 2));
    model.forward(x.view(), ForwardOptions::default()).unwrap();
    let lstm_cfg = LstmConfig::new(3, 5).batch_first(true);
    let params = ClassifierParams::init(&lstm_cfg, 2, 0.0, 1).unwrap();
    let mut classifier = Device::Gpu(ctx.clone())
        .classifier(&params, TrainConfig::default())
        .unwrap();

    ctx.device().destroy();
    let t0 = std::time::Instant::now();
    let err = model
        .forward(x.view(), ForwardOptions::default())
        .unwrap_err();
    assert!(matches!(err, LstmError::DeviceLost(_)), "{err:?}");
    assert!(err.to_string().contains("device was lost"), "{err}");
    let batch = Batch {
        x: x.view(),
        targets: &[0, 1, 0, 1],
        seq_lens: None,
    };
    let err = classifier.train_step(&batch, true).unwrap_err();
    assert!(matches!(err, LstmError::DeviceLost(_)), "{err:?}");
    assert!(
        t0.elapsed().as_secs() < 30,
        "a lost device made a call hang"
    );
}

fn webgpu_context() -> Option<GpuContext> {
    let opts = GpuOptions {
        limits: Some(LimitsRequest::WebGpu),
        ..Default::default()
    };
    match GpuContext::with_options(&opts) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            assert!(std::env::var_os("LSTM_REQUIRE_GPU").is_none(), "{e}");
            None
        }
    }
}

/// Found by this test: `create_buffer_init` panicked mapping the invalid buffer.
#[test]
fn an_upload_beyond_the_buffer_limit_is_a_typed_error() {
    let Some(ctx) = webgpu_context() else { return };
    let max = ctx.limits().max_buffer_size;
    let model = lstm(&Arc::new(ctx));
    // One float more than the largest buffer (batch 1, input size 3).
    let t = (max / 12) as usize + 1;
    let x = ndarray::Array3::<f32>::from_elem((t, 1, 3), 0.5);
    let Err(err) = model.upload_sequence(x.view()) else {
        panic!("an upload beyond the limit succeeded")
    };
    assert!(matches!(err, LstmError::Gpu { .. }), "{err:?}");
    let source = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(
        source.is_some_and(|s| s.contains("maximum buffer size")),
        "wgpu's error is kept as the source: {err:?}"
    );
}

#[test]
fn an_error_outside_any_scope_is_returned_by_the_next_call_not_a_panic() {
    let Some(ctx) = webgpu_context() else { return };
    let ctx = Arc::new(ctx);
    let (model, x) = (lstm(&ctx), random_input(&LstmConfig::new(3, 5), 4, 2, 2));
    // A caller using the device directly, with no error scope: wgpu's default would panic.
    let _bad = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("too big"),
        size: ctx.limits().max_buffer_size + 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let err = model
        .forward(x.view(), ForwardOptions::default())
        .unwrap_err();
    assert!(matches!(err, LstmError::Gpu { .. }), "{err:?}");
    // Reported once: the context works again after it.
    model.forward(x.view(), ForwardOptions::default()).unwrap();
}

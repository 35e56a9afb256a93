//! Where `lstm-wgpu train` runs (`--device`, `--adapter-per-rank`) and the check of the
//! trained model on the other device.

use std::sync::Arc;

use lstm_wgpu::train::{Classifier, ClassifierParams, Dataset, Device, TrainConfig};
use lstm_wgpu::{GpuContext, GpuOptions, Result};

use super::train::Args;

/// Where to train.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU, else the CPU path.
    Auto,
    /// Any adapter, software ones too.
    Gpu,
    /// The CPU path.
    Cpu,
}

/// Where to train; `adapter_index`: take that candidate adapter (modulo their count)
/// instead of the best (`--adapter-per-rank`); `say`: explain a fallback to the CPU.
pub(crate) fn device(
    choice: DeviceChoice,
    adapter_index: Option<usize>,
    say: bool,
) -> Result<Device> {
    let opts = GpuOptions {
        adapter_index,
        ..Default::default()
    };
    let gpu = match choice {
        DeviceChoice::Cpu => None,
        DeviceChoice::Gpu => Some(GpuContext::with_options(&opts)?),
        DeviceChoice::Auto => match GpuContext::with_options(&opts) {
            Ok(c) if c.is_software() => {
                if say {
                    println!("only a software GPU adapter was found ({}); the CPU path is faster on this machine, so it trains there (--device gpu forces the adapter)", c.describe());
                }
                None
            }
            Ok(c) => Some(c),
            Err(e) => {
                if say {
                    println!("no GPU adapter ({e}); training on the CPU path instead");
                }
                None
            }
        },
    };
    Ok(gpu.map_or(Device::Cpu, |c| Device::Gpu(Arc::new(c))))
}

/// The trained model on the other device: max |logits difference| on one test batch.
pub(crate) fn compare_devices(
    a: &Args,
    model: &dyn Classifier,
    trained: &ClassifierParams,
    test: &Dataset,
) -> Result<()> {
    let idx: Vec<usize> = (0..a.batch.min(test.len())).collect();
    let (x, _) = test.gather(&idx)?;
    let other = if model.device_name().starts_with("GPU") {
        Device::Cpu
    } else {
        match GpuContext::new() {
            Ok(ctx) => Device::Gpu(Arc::new(ctx)),
            Err(_) => {
                println!("GPU vs CPU: no GPU adapter to compare with");
                return Ok(());
            }
        }
    };
    let other = other.classifier(trained, TrainConfig::default())?;
    let (p, q) = (model.logits(x.view(), None)?, other.logits(x.view(), None)?);
    let diff = p
        .iter()
        .zip(&q)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0f32, f32::max);
    println!(
        "GPU vs CPU on one test batch of {}: max |logits difference| = {diff:.2e}",
        idx.len()
    );
    Ok(())
}

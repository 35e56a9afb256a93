pub mod compare;
pub mod devices;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod forward;
pub mod generate;
pub mod inspect;
pub mod keras_forward;
pub mod onnx_forward;
pub mod resume;
pub mod train;
pub mod train_gru;

use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::{gpu, GpuContext, Result};

/// The progress bar of one training epoch of `steps` batches (`train`, `generate`).
pub fn epoch_bar(epoch: usize, steps: usize) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "epoch {prefix:>2} [{bar:30}] {pos}/{len} batches ({elapsed}, {per_sec})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bar = ProgressBar::new(steps as u64).with_style(style);
    bar.set_prefix(epoch.to_string());
    bar
}

/// `lstm-wgpu adapters`: what wgpu sees, and what `GpuContext::new` picks.
pub fn adapters() -> Result<()> {
    for a in gpu::list_adapters() {
        println!("found:  {a}");
    }
    let ctx = GpuContext::new()?;
    println!("chosen: {}", ctx.describe());
    Ok(())
}

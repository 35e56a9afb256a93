pub mod compare;
pub mod devices;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod forward;
pub mod generate;
pub mod inspect;
pub mod resume;
pub mod train;

use lstm_wgpu::{gpu, GpuContext, Result};

/// `lstm-wgpu adapters`: what wgpu sees, and what `GpuContext::new` picks.
pub fn adapters() -> Result<()> {
    for a in gpu::list_adapters() {
        println!("found:  {a}");
    }
    let ctx = GpuContext::new()?;
    println!("chosen: {}", ctx.describe());
    Ok(())
}

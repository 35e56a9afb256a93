//! `shaders/softmax_xent.wgsl`: per-row softmax cross-entropy, its gradient and the
//! row's `(loss, correct)`. CPU twin: [`crate::cpu::softmax_xent()`].

use bytemuck::{Pod, Zeroable};
use ndarray::{Array2, ArrayView2};

use super::lstm_step::check_fits;
use super::Dispatch;
use crate::error::{LstmError, Result};
use crate::gpu::buffers::{bind_group, new_storage, storage_init, storage_u32, uniform};
use crate::gpu::context::GpuContext;

/// Mirrors `XentParams` in `shaders/softmax_xent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct XentParams {
    pub rows: u32,
    pub classes: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// The buffers of one dispatch: `logits` `[R, C]`, `labels` `[R]` u32, `weights` `[R]`
/// in; `dlogits` `[R, C]` and `stats` `[R][2]` out.
pub(crate) struct XentBuffers<'a> {
    pub logits: &'a wgpu::Buffer,
    pub labels: &'a wgpu::Buffer,
    pub weights: &'a wgpu::Buffer,
    pub dlogits: &'a wgpu::Buffer,
    pub stats: &'a wgpu::Buffer,
}

/// One dispatch (one workgroup per row) reading its sizes and scale from `params` (an
/// [`XentParams`] uniform the caller may rewrite between runs).
pub(crate) fn prepare(
    ctx: &GpuContext,
    params: &wgpu::Buffer,
    rows: u32,
    bufs: &XentBuffers,
) -> Result<Dispatch> {
    let k = ctx.kernels()?;
    let resources = [
        params.as_entire_binding(),
        bufs.logits.as_entire_binding(),
        bufs.labels.as_entire_binding(),
        bufs.weights.as_entire_binding(),
        bufs.dlogits.as_entire_binding(),
        bufs.stats.as_entire_binding(),
    ];
    Ok(Dispatch {
        pipeline: k.xent.clone(),
        bind_group: bind_group(ctx, &k.xent_layout, &resources),
        grid: (rows, 1),
    })
}

/// Records one dispatch with the sizes and scale of `p`.
pub(crate) fn record(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    p: XentParams,
    bufs: &XentBuffers,
) -> Result<()> {
    let params = uniform(ctx, "xent params", &p);
    prepare(ctx, &params, p.rows, bufs)?.record(pass);
    Ok(())
}

/// The single-kernel entry point of `softmax_xent.wgsl`, used by
/// `tests/kernels.rs` and usable on its own: one dispatch over `logits` `[R, C]`
/// with integer `targets` and per-row `weights`, returning what
/// [`crate::cpu::softmax_xent()`] returns: `dlogits` `[R, C]` (scaled by `scale`) and per
/// row `(nll·w, w·[argmax == target])`. With `poison` the outputs start as NaN.
pub fn run(
    ctx: &GpuContext,
    logits: ArrayView2<f32>,
    targets: &[u32],
    weights: &[f32],
    scale: f32,
    poison: bool,
) -> Result<(Array2<f32>, Vec<[f32; 2]>)> {
    let (rows, classes) = logits.dim();
    check_operands((rows, classes), targets, weights)?;
    check_fits(ctx, "softmax_xent", &[rows * classes], (rows as u32, 1))?;
    let p = XentParams {
        rows: rows as u32,
        classes: classes as u32,
        scale,
        _pad: 0,
    };
    let data = ctx.scoped("softmax_xent", || {
        let flat: Vec<f32> = logits.iter().copied().collect();
        let logits = storage_init(ctx, "logits", &flat);
        let labels = storage_u32(ctx, "targets", targets);
        let weights = storage_init(ctx, "weights", weights);
        let dlogits = new_storage(ctx, "dlogits", rows * classes, poison);
        let stats = new_storage(ctx, "stats", 2 * rows, poison);
        let bufs = XentBuffers {
            logits: &logits,
            labels: &labels,
            weights: &weights,
            dlogits: &dlogits,
            stats: &stats,
        };
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let mut pass = encoder.begin_compute_pass(&Default::default());
        record(ctx, &mut pass, p, &bufs)?;
        drop(pass);
        ctx.submit_and_read(
            encoder,
            &[(&dlogits, dlogits.size()), (&stats, stats.size())],
        )
    })?;
    let [d, stats]: [Vec<f32>; 2] = data
        .try_into()
        .map_err(|_| LstmError::value("softmax_xent readback", "not two buffers"))?;
    let d = Array2::from_shape_vec((rows, classes), d)
        .map_err(|e| LstmError::shape("softmax_xent readback", "[R, C]", e.to_string()))?;
    Ok((d, stats.chunks_exact(2).map(|s| [s[0], s[1]]).collect()))
}

/// [`run`]'s checks: one target and weight per row, every target below the class count.
fn check_operands((rows, classes): (usize, usize), targets: &[u32], weights: &[f32]) -> Result<()> {
    if targets.len() != rows || weights.len() != rows || rows == 0 || classes == 0 {
        return Err(LstmError::shape(
            "softmax_xent logits / targets / weights",
            "[R, C] / [R] / [R] with R, C > 0",
            format!(
                "{:?} / {} / {}",
                [rows, classes],
                targets.len(),
                weights.len()
            ),
        ));
    }
    if let Some(r) = targets.iter().position(|&t| t as usize >= classes) {
        return Err(LstmError::value(
            format!("targets[{r}]"),
            format!("label {} is not below the {classes} classes", targets[r]),
        ));
    }
    Ok(())
}

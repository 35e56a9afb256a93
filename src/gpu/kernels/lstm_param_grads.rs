//! `shaders/lstm_param_grads.wgsl`: the bias and diagonal-peephole gradients, sums
//! over all `T·B` rows in a fixed order. CPU twin: [`crate::cpu::lstm_param_grads()`].

use bytemuck::{Pod, Zeroable};
use ndarray::{Array1, ArrayView1, ArrayView2};

use super::lstm_step::{check_fits, interleave_gate_rows, prev_rows};
use super::matmul_params::split_len;
use super::Dispatch;
use crate::error::{LstmError, Result};
use crate::gpu::buffers::{bind_group, new_storage, storage_init, uniform};
use crate::gpu::context::GpuContext;
use crate::gpu::pack;

/// Mirrors `GradParams` in `shaders/lstm_param_grads.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct GradParams {
    pub rows: u32,
    pub hidden: u32,
    pub peephole: u32,
    /// 1: add to `db`/`dp` instead of writing them.
    pub accumulate: u32,
    /// Rows per slice of a split (0: none; set by [`prepare`]); `sum_slices`: the slices.
    pub row_chunk: u32,
    pub _pad: [u32; 3],
}

impl GradParams {
    /// Sums over `rows` rows of `hidden` units (`peephole`: the step's code; 1 sums the
    /// diagonal peepholes too), added onto the outputs when `accumulate`.
    pub fn new(rows: usize, hidden: usize, peephole: u32, accumulate: bool) -> Self {
        GradParams {
            rows: rows as u32,
            hidden: hidden as u32,
            peephole,
            accumulate: accumulate as u32,
            row_chunk: 0,
            _pad: [0; 3],
        }
    }

    /// `(slices, row_chunk)` on a hardware GPU: as the weight gradients split (`split_len`).
    fn split(&self, max_groups: u32) -> (u32, u32) {
        split_len((self.hidden.div_ceil(64), self.rows), max_groups, 1)
    }
}

/// The bias and peephole sums of one chunk, bound: one dispatch, or on a hardware GPU
/// with many rows, slices of rows into scratch buffers of its own and their sum.
pub(crate) struct ParamGrads {
    sums: Dispatch,
    /// `sum_slices` over the slices, and the slices' buffers (db, dp).
    total: Option<(Dispatch, [wgpu::Buffer; 2])>,
}

impl ParamGrads {
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.sums.record(pass);
        if let Some((total, _)) = &self.total {
            total.record(pass);
        }
    }
}

/// The sums, bound: `db` `[4H]` (unit-interleaved) and `dp` `[3H]` (Diagonal only) from
/// `dz`, `gates` `[R][H]` vec4 and `prev` `[R][2H]`; split over the rows where
/// [`GradParams`]' split says so (the tiled kernel forms only).
pub(crate) fn prepare(
    ctx: &GpuContext,
    p: GradParams,
    [dz, gates, prev]: [&wgpu::Buffer; 3],
    [db, dp]: [&wgpu::Buffer; 2],
) -> Result<ParamGrads> {
    let groups = ctx.limits().max_compute_workgroups_per_dimension;
    let (slices, row_chunk) = match ctx.software_kernels() {
        true => (1, 0),
        false => p.split(groups),
    };
    if slices == 1 {
        let sums = bind(ctx, p, [dz, gates, prev], [db, dp], 1)?;
        return Ok(ParamGrads { sums, total: None });
    }
    let h = p.hidden as usize;
    let n = slices as usize;
    let parts = [
        new_storage(ctx, "bias-gradient slices", n * 4 * h, false),
        match p.peephole {
            1 => new_storage(ctx, "peephole-gradient slices", n * 3 * h, false),
            _ => ctx.dummy().clone(),
        },
    ];
    let part = GradParams {
        accumulate: 0,
        row_chunk,
        ..p
    };
    let sums = bind(ctx, part, [dz, gates, prev], [&parts[0], &parts[1]], slices)?;
    let summed = GradParams {
        row_chunk: slices,
        ..p
    };
    // Without peepholes `dp` may be the dummy: no slices of it to bind beside it.
    let dp_parts = if p.peephole == 1 { &parts[1] } else { gates };
    let mut total = bind(ctx, summed, [&parts[0], gates, dp_parts], [db, dp], 1)?;
    total.pipeline = ctx.kernels()?.param_grads_sum.clone();
    Ok(ParamGrads {
        sums,
        total: Some((total, parts)),
    })
}

/// `main`'s dispatch over `slices` slices of rows (grid y).
fn bind(
    ctx: &GpuContext,
    p: GradParams,
    [dz, gates, prev]: [&wgpu::Buffer; 3],
    [db, dp]: [&wgpu::Buffer; 2],
    slices: u32,
) -> Result<Dispatch> {
    let k = ctx.kernels()?;
    let params = uniform(ctx, "grad params", &p);
    let resources = [
        params.as_entire_binding(),
        dz.as_entire_binding(),
        gates.as_entire_binding(),
        prev.as_entire_binding(),
        db.as_entire_binding(),
        dp.as_entire_binding(),
    ];
    Ok(Dispatch {
        pipeline: k.param_grads.clone(),
        bind_group: bind_group(ctx, &k.grads_layout, &resources),
        grid: (p.hidden.div_ceil(64), slices),
    })
}

/// The single-kernel entry point of `lstm_param_grads.wgsl`, used by
/// `tests/kernels.rs` and usable on its own: one dispatch over all `R` rows, from
/// host data in the layout of [`crate::cpu::lstm_param_grads()`] (`dz`, `gates` `[R, 4H]` in
/// i, f, g, o blocks, `c_prev` `[R, H]`). Returns `db` `[4H]` (gate blocks) and, when
/// `diagonal`, the peephole gradients `[3H]` (i, f, o blocks). With `poison` the outputs
/// (and `prev`'s unused `h_{t-1}` half) start as NaN.
pub fn run(
    ctx: &GpuContext,
    dz: ArrayView2<f32>,
    gates: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    diagonal: bool,
    poison: bool,
) -> Result<(Array1<f32>, Option<Array1<f32>>)> {
    run_onto(ctx, dz, gates, c_prev, diagonal, poison, None)
}

/// [`run`] in accumulate mode when `onto` is given: the kernel adds its sums to these
/// `db` `[4H]` and `dp` `[3H]` (gate-major, as the CPU twin returns them).
pub fn run_onto(
    ctx: &GpuContext,
    dz: ArrayView2<f32>,
    gates: ArrayView2<f32>,
    c_prev: ArrayView2<f32>,
    diagonal: bool,
    poison: bool,
    onto: Option<(ArrayView1<f32>, ArrayView1<f32>)>,
) -> Result<(Array1<f32>, Option<Array1<f32>>)> {
    let (rows, h) = c_prev.dim();
    if dz.dim() != (rows, 4 * h) || gates.dim() != (rows, 4 * h) || rows == 0 || h == 0 {
        return Err(LstmError::shape(
            "lstm_param_grads dz / gates / c_prev",
            "[R, 4H] / [R, 4H] / [R, H] with R, H > 0",
            format!(
                "{:?} / {:?} / {:?}",
                dz.shape(),
                gates.shape(),
                c_prev.shape()
            ),
        ));
    }
    check_fits(
        ctx,
        "lstm_param_grads",
        &[4 * rows * h],
        ((h as u32).div_ceil(64), 1),
    )?;
    if let Some((db0, dp0)) = onto {
        if db0.len() != 4 * h || (diagonal && dp0.len() != 3 * h) {
            return Err(LstmError::shape(
                "lstm_param_grads onto db / dp",
                format!("[{}] / [{}]", 4 * h, 3 * h),
                format!("[{}] / [{}]", db0.len(), dp0.len()),
            ));
        }
    }
    let p = GradParams::new(rows, h, diagonal as u32, onto.is_some());
    let fill = if poison { f32::NAN } else { 0.0 };
    let prev = prev_rows(c_prev, fill);
    let data = ctx.scoped("lstm_param_grads", || {
        let dzb = storage_init(ctx, "dz", &interleave_gate_rows(dz));
        let gb = storage_init(ctx, "gates", &interleave_gate_rows(gates));
        let pb = storage_init(ctx, "prev", &prev);
        let (db, dp) = match onto {
            Some((db0, dp0)) => (
                storage_init(ctx, "db", &pack::interleave_vec(db0)),
                diagonal.then(|| storage_init(ctx, "dp", &peephole_interleave(dp0))),
            ),
            None => (
                new_storage(ctx, "db", 4 * h, poison),
                diagonal.then(|| new_storage(ctx, "dp", 3 * h, poison)),
            ),
        };
        let dpb = dp.as_ref().unwrap_or(ctx.dummy());
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let mut pass = encoder.begin_compute_pass(&Default::default());
        prepare(ctx, p, [&dzb, &gb, &pb], [&db, dpb])?.record(&mut pass);
        drop(pass);
        let mut sources = vec![(&db, db.size())];
        sources.extend(dp.as_ref().map(|dp| (dp, dp.size())));
        ctx.submit_and_read(encoder, &sources)
    })?;
    let mut it = data.into_iter();
    let db = it
        .next()
        .ok_or_else(|| LstmError::value("lstm_param_grads readback", "no db"))?;
    let dp = it.next().map(|dp| pack::peephole_from_gpu(&dp));
    Ok((pack::deinterleave_vec(&db), dp))
}

/// Gate-major diagonal peepholes `[3H]` → the kernel's `[H][3]`.
fn peephole_interleave(p: ArrayView1<f32>) -> Vec<f32> {
    let h = p.len() / 3;
    (0..h)
        .flat_map(|j| (0..3).map(move |g| p[g * h + j]))
        .collect()
}

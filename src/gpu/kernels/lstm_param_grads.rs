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
    /// Where row 0 starts in `dz` (vec4 entries) and in `gates` and `prev` (entries of
    /// one unit: a vec4, a pair): a direction's block of a shared buffer ([`Self::at`]).
    pub dz_at: u32,
    pub cache_at: u32,
    pub _pad: u32,
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
            dz_at: 0,
            cache_at: 0,
            _pad: 0,
        }
    }

    /// The sums over the rows from entry `dz_at` of `dz` and `cache_at` of the cache.
    pub fn at(self, dz_at: usize, cache_at: usize) -> Self {
        GradParams {
            dz_at: dz_at as u32,
            cache_at: cache_at as u32,
            ..self
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
    // `sum_slices` reads the slices from their buffers' start (it has no offsets).
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
    let rows = [dz.reborrow(), gates.reborrow(), c_prev.reborrow()];
    run_at(ctx, rows, (diagonal, poison), onto, (0, 0))
}

/// [`run_onto`] with the rows placed from entry `at.0` of `dz` and `at.1` of `gates` and
/// `prev` on (`GradParams::at`), after that many NaN entries.
fn run_at(
    ctx: &GpuContext,
    [dz, gates, c_prev]: [ArrayView2<f32>; 3],
    (diagonal, poison): (bool, bool),
    onto: Option<(ArrayView1<f32>, ArrayView1<f32>)>,
    at: (usize, usize),
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
    let p = GradParams::new(rows, h, diagonal as u32, onto.is_some()).at(at.0, at.1);
    let fill = if poison { f32::NAN } else { 0.0 };
    let after_nans = |nans: usize, v: Vec<f32>| [vec![f32::NAN; nans], v].concat();
    let prev = after_nans(2 * at.1, prev_rows(c_prev, fill));
    let data = ctx.scoped("lstm_param_grads", || {
        let dzb = storage_init(ctx, "dz", &after_nans(4 * at.0, interleave_gate_rows(dz)));
        let gb = storage_init(
            ctx,
            "gates",
            &after_nans(4 * at.1, interleave_gate_rows(gates)),
        );
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

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    /// Values in [-1, 1) that vary along both axes.
    fn varied((rows, cols): (usize, usize), seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            ((r * 29 + c * 13 + seed * 7) % 23) as f32 / 11.5 - 1.0
        })
    }

    /// A direction's block of a shared buffer (`GradParams::at`): the sums read their
    /// rows from the offsets, the same bits as from buffers of their own, in both forms
    /// (600 rows: the tiled form splits them).
    #[test]
    fn the_sums_read_their_rows_from_the_offsets() {
        let Ok(mut ctx) = GpuContext::new() else {
            return; // no adapter: the integration tests say so loudly
        };
        for software in [false, true] {
            ctx.set_software_kernels(software);
            for (n, (rows, h)) in [(5, 7), (600, 9)].into_iter().enumerate() {
                let dz = varied((rows, 4 * h), n);
                let gates = varied((rows, 4 * h), n + 1).mapv(|g| 0.5 + 0.4 * g);
                let c_prev = varied((rows, h), n + 2);
                let host = [dz.view(), gates.view(), c_prev.view()];
                let own = run_at(&ctx, host, (true, true), None, (0, 0)).unwrap();
                let at = (rows * h + 3, 2 * rows * h + 1);
                let got = run_at(&ctx, host, (true, true), None, at).unwrap();
                let bits = |v: &Array1<f32>| v.mapv(f32::to_bits);
                let tag = format!("R={rows} H={h} software {software}");
                assert_eq!(bits(&got.0), bits(&own.0), "db {tag}");
                let (got_p, own_p) = (got.1.unwrap(), own.1.unwrap());
                assert_eq!(bits(&got_p), bits(&own_p), "dp {tag}");
            }
        }
    }
}

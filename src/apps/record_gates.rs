//! The gate activations, cell and hidden states of every step of a forward pass, on
//! the CPU path ([`record_gates`]) or the GPU ([`record_gates_gpu`]), in the same
//! type, so they can be compared and plotted.
//!
//! Both read what the training forward already keeps for BPTT — the gates after their
//! activations and the state entering each step (`cpu::forward_train`'s cache; the GPU
//! forward's training cache, read back) — and take the state *after* step `t` from the
//! entry state of the step that follows it in the direction's order, or from
//! `(h_n, c_n)` after the last one. Nothing is recomputed on the host, so a GPU record
//! is what the GPU computed.

use ndarray::{s, Array3, ArrayView3, Axis};

use crate::cpu;
use crate::error::{LstmError, Result};
use crate::gpu::{storage_init, GpuLstm, GpuState, RunInputs, Start};
use crate::sequence::{check_inputs, lengths, to_time_major, ForwardOptions};

/// One layer-direction's record; every array is time-major `[T, B, H]` and zero past a
/// sequence's length.
#[derive(Clone, Debug, PartialEq)]
pub struct GateTrace {
    /// `i_t = σ(z_i)`.
    pub input: Array3<f32>,
    /// `f_t = σ(z_f)`.
    pub forget: Array3<f32>,
    /// `g_t = tanh(z_g)`, the candidate cell input.
    pub cell_input: Array3<f32>,
    /// `o_t = σ(z_o)`.
    pub output: Array3<f32>,
    /// `c_t`.
    pub cell: Array3<f32>,
    /// `h_t`.
    pub hidden: Array3<f32>,
}

impl GateTrace {
    /// The six arrays with their names, in a fixed order.
    pub fn named(&self) -> [(&'static str, &Array3<f32>); 6] {
        [
            ("input gate", &self.input),
            ("forget gate", &self.forget),
            ("cell input", &self.cell_input),
            ("output gate", &self.output),
            ("cell state", &self.cell),
            ("hidden state", &self.hidden),
        ]
    }
}

/// Every layer-direction's trace, indexed `l·D + d` like `h_n`.
#[derive(Clone, Debug, PartialEq)]
pub struct GateRecord {
    pub traces: Vec<GateTrace>,
}

impl GateRecord {
    /// Largest absolute difference between two records of the same shapes.
    pub fn max_abs_diff(&self, other: &GateRecord) -> Result<f32> {
        let mut worst = 0.0f32;
        if self.traces.len() != other.traces.len() {
            return Err(LstmError::shape(
                "gate records",
                format!("{} layer-directions", self.traces.len()),
                other.traces.len().to_string(),
            ));
        }
        for (a, b) in self.traces.iter().zip(&other.traces) {
            for ((name, x), (_, y)) in a.named().into_iter().zip(b.named()) {
                if x.shape() != y.shape() {
                    return Err(LstmError::shape(
                        name,
                        format!("{:?}", x.shape()),
                        format!("{:?}", y.shape()),
                    ));
                }
                worst = x
                    .iter()
                    .zip(y.iter())
                    .fold(worst, |w, (p, q)| w.max((p - q).abs()));
            }
        }
        Ok(worst)
    }
}

/// The gates and states of `cpu::forward` on `x` (the caller's layout) with `opts`.
pub fn record_gates(
    weights: &crate::LstmWeights,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<GateRecord> {
    let (out, cache) = cpu::forward_train(weights, x, opts)?;
    let cfg = &weights.config;
    let mut traces = Vec::with_capacity(cache.steps.len());
    for (ld, sc) in cache.steps.iter().enumerate() {
        let end = (
            out.h_n.index_axis(Axis(0), ld),
            out.c_n.index_axis(Axis(0), ld),
        );
        let prev = (sc.h_prev.view(), sc.c_prev.view());
        let reverse = cfg.bidirectional && ld % 2 == 1;
        traces.push(assemble(sc.gates.view(), prev, end, &cache.lens, reverse));
    }
    Ok(GateRecord { traces })
}

/// The gates and states of `lstm`'s GPU forward on `x` with `opts`: one submit, one
/// readback of the training cache (per chunk of the plan, joined).
pub fn record_gates_gpu(
    lstm: &GpuLstm,
    x: ArrayView3<f32>,
    opts: ForwardOptions,
) -> Result<GateRecord> {
    let cfg = lstm.config().clone();
    let dims = check_inputs(&cfg, &x, &opts)?;
    let (t, b, h) = (dims.t, dims.b, cfg.hidden_size);
    let plan = lstm.plan(t, b)?;
    let flat = |a: &Array3<f32>| a.as_standard_layout().iter().copied().collect::<Vec<f32>>();
    let xt = to_time_major(&cfg, &x);
    let lens = lengths(dims, &opts);
    let ctx = lstm.context();
    let xt = flat(&xt);
    let row = b * cfg.input_size;
    let (data, starts) = ctx.scoped("recording the gates", || {
        let x_chunks: Vec<wgpu::Buffer> = plan
            .ranges()
            .map(|r| storage_init(ctx, "x", &xt[r.start * row..r.end * row]))
            .collect();
        let initial = opts.initial.map(|s| GpuState::upload(ctx, s));
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let inputs = RunInputs {
            x_chunks: &x_chunks,
            initial: initial.as_ref().map_or(Start::Zero, Start::From),
            lens: &lens,
            b,
        };
        let run = lstm.record(&mut encoder, &plan, &inputs, true)?;
        let cache = run
            .cache
            .as_ref()
            .ok_or_else(|| LstmError::value("gate cache", "the training forward kept none"))?;
        let mut sources = vec![&run.h_n, &run.c_n];
        for blocks in &cache.blocks {
            sources.extend(blocks.iter().map(|k| &k.gates));
            sources.extend(blocks.iter().map(|k| &k.prev));
        }
        // Where each layer-direction's block starts (a direction of a stacked layer).
        let starts: Vec<usize> = cache.blocks.iter().map(|k| k[0].at).collect();
        let sized: Vec<(&wgpu::Buffer, u64)> = sources.iter().map(|b| (*b, b.size())).collect();
        Ok((ctx.submit_and_read(encoder, &sized)?, starts))
    })?;
    let ld_count = cfg.num_layers * cfg.num_directions();
    let mut it = data.into_iter();
    // Each cache tensor comes back as `parts` chunks in time order, from float `skip` on.
    let mut read = |shape: (usize, usize, usize), parts: usize, skip: usize| {
        let v: Vec<f32> = it.by_ref().take(parts).flatten().skip(skip).collect();
        let n = shape.0 * shape.1 * shape.2;
        // Buffers may be padded past their contents; read the first n floats.
        let v = v.get(..n).map(<[f32]>::to_vec).unwrap_or(v);
        Array3::from_shape_vec(shape, v)
            .map_err(|e| LstmError::shape("GPU readback", format!("{shape:?}"), e.to_string()))
    };
    let (h_n, c_n) = (read((ld_count, b, h), 1, 0)?, read((ld_count, b, h), 1, 0)?);
    let mut traces = Vec::with_capacity(ld_count);
    for (ld, &start) in starts.iter().enumerate() {
        // The cache keeps the four gates of a unit together (vec4 i, f, g, o); the
        // CPU path keeps them in four blocks of H: reorder to the blocks.
        let packed = read((t, b, 4 * h), plan.count, 4 * start)?
            .into_shape_with_order((t, b, h, 4))
            .expect("t·b·4h");
        let gates = packed
            .permuted_axes([0, 1, 3, 2])
            .as_standard_layout()
            .into_owned();
        let gates = gates
            .into_shape_with_order((t, b, 4 * h))
            .expect("standard layout");
        let prev = read((t, b, 2 * h), plan.count, 2 * start)?;
        let reverse = cfg.bidirectional && ld % 2 == 1;
        let end = (h_n.index_axis(Axis(0), ld), c_n.index_axis(Axis(0), ld));
        let prev = (prev.slice(s![.., .., ..h]), prev.slice(s![.., .., h..]));
        traces.push(assemble(gates.view(), prev, end, &lens, reverse));
    }
    Ok(GateRecord { traces })
}

type Pair<'a, D> = (
    ndarray::ArrayView<'a, f32, D>,
    ndarray::ArrayView<'a, f32, D>,
);

/// One trace from the gates `[T, B, 4H]` (blocks i, f, g, o), the state entering each
/// step `(h_prev, c_prev)` `[T, B, H]` and the final state `(h_n, c_n)` `[B, H]`.
fn assemble(
    gates: ArrayView3<f32>,
    (h_prev, c_prev): Pair<ndarray::Ix3>,
    (h_n, c_n): Pair<ndarray::Ix2>,
    lens: &[usize],
    reverse: bool,
) -> GateTrace {
    let (t_len, b, h4) = gates.dim();
    let h = h4 / 4;
    let block = |k: usize| gates.slice(s![.., .., k * h..(k + 1) * h]).to_owned();
    let mut trace = GateTrace {
        input: block(0),
        forget: block(1),
        cell_input: block(2),
        output: block(3),
        cell: Array3::zeros((t_len, b, h)),
        hidden: Array3::zeros((t_len, b, h)),
    };
    for (bi, &len) in lens.iter().enumerate() {
        for t in 0..t_len {
            if t >= len {
                for a in [
                    &mut trace.input,
                    &mut trace.forget,
                    &mut trace.cell_input,
                    &mut trace.output,
                ] {
                    a.slice_mut(s![t, bi, ..]).fill(0.0);
                }
                continue;
            }
            // The step after `t` in this direction's order, if the sequence has one.
            let after = if reverse {
                t.checked_sub(1)
            } else {
                Some(t + 1).filter(|&n| n < len)
            };
            let (hs, cs) = match after {
                Some(n) => (h_prev.slice(s![n, bi, ..]), c_prev.slice(s![n, bi, ..])),
                None => (h_n.row(bi), c_n.row(bi)),
            };
            trace.hidden.slice_mut(s![t, bi, ..]).assign(&hs);
            trace.cell.slice_mut(s![t, bi, ..]).assign(&cs);
        }
    }
    trace
}

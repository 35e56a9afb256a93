//! What the GPU classifier adds for a GRU (`GpuClassifier::new_gru`). The GRU runs in
//! the LSTM's schedule with its weights in the four gate slots (`pack::gru_layer`):
//! `w_ih` = (W_ir, W_iz, 0, W_in), `w_rec` = (W_hr, W_hz, W_hn, 0), bias =
//! (b_ir + b_hr, b_iz + b_hz, b_hn, b_in). Trained as they are, two things would make
//! the GPU's model differ from the CPU's ([`super::GruClassifier`]):
//!
//! - the backward writes gradients into the padded slots (w_ih slot 2 sees the n gate's
//!   pre-activation, w_rec slot 3 the input side's), which would grow weights there and
//!   join the global clip norm. [`GruParts::mask`] overwrites them with exact zeros
//!   before the clip and the update, so the padded weights stay exactly zero (Adam's
//!   step for a zero gradient with zero moments is exactly zero);
//! - the CPU trains `b_ih` and `b_hh` separately (each gets the fold's gradient, so
//!   each gets its own Adam step and both count in the clip norm). The GPU therefore
//!   trains them as two `[3H]` tensors, as the CPU does: their gradients are the packed
//!   bias gradient's slots (0, 1, 3) and (0, 1, 2), and after every update the packed
//!   bias is rebuilt from them ([`GruParts::pack`]). Both maps are GEMMs with 0/1
//!   matrices, exact in f32 (one non-zero product per output).

use ndarray::Array2;

use super::gpu::GpuClassifier;
use super::gru_cpu::GruClassifierParams;
use super::model::Dense;
use crate::error::{LstmError, Result};
use crate::gpu::kernels::matmul::{self, MatmulParams};
use crate::gpu::kernels::Dispatch;
use crate::gpu::{new_storage, pack, storage_init, GpuContext, LayerBuffers};
use crate::gru::{GruConfig, GruLayerWeights, GruWeights};
use crate::weights::{LayerWeights, PeepholeWeights};

/// Gate slots of the GRU's (r, z, n) rows: input side and recurrent side.
const IH_SLOTS: [usize; 3] = [0, 1, 3];
const HH_SLOTS: [usize; 3] = [0, 1, 2];

/// The GRU's own bias tensors on the GPU and the dispatches that tie them (and the
/// padded slots) to the packed buffers the kernels read.
pub(super) struct GruParts {
    pub config: GruConfig,
    /// Per layer-direction `[b_ih, b_hh]`, `[3H]` each (empty without bias).
    pub biases: Vec<[wgpu::Buffer; 2]>,
    /// Their gradients.
    pub bias_grads: Vec<[wgpu::Buffer; 2]>,
    /// After the backward: zero the padded slots' gradients, split the bias gradient.
    mask: Vec<Dispatch>,
    /// After an update: packed bias = b_hh·P_hh + b_ih·P_ih.
    pack: Vec<Dispatch>,
}

impl GruParts {
    /// Buffers and dispatches for `weights` (their packed form already uploaded as
    /// `packed`, with gradient buffers `grads`).
    pub fn new(
        ctx: &GpuContext,
        weights: &GruWeights,
        packed: &[LayerBuffers],
        grads: &[LayerBuffers],
    ) -> Result<Self> {
        let cfg = &weights.config;
        let h = cfg.hidden_size;
        let widest = (0..cfg.num_layers)
            .map(|l| cfg.layer_input_size(l))
            .max()
            .unwrap_or(0)
            .max(h);
        let zeros = new_storage(ctx, "zeros", widest, false);
        let place =
            [IH_SLOTS, HH_SLOTS].map(|s| storage_init(ctx, "gru bias slots", &placement(h, s)));
        let mut parts = GruParts {
            config: cfg.clone(),
            biases: Vec::new(),
            bias_grads: Vec::new(),
            mask: Vec::new(),
            pack: Vec::new(),
        };
        for (i, (w, (p, g))) in weights
            .layers
            .iter()
            .zip(packed.iter().zip(grads))
            .enumerate()
        {
            let input = cfg.layer_input_size(i / cfg.num_directions());
            // w_ih slot 2 and w_rec slot 3: H rows of the interleaved [H][4][K] layout.
            for (buf, k, slot) in [(&g.w_ih, input, 2), (&g.w_rec, h, 3)] {
                let zero = MatmulParams::new(h, k, 1)
                    .ldc(4 * k)
                    .offsets(0, 0, slot * k);
                parts
                    .mask
                    .push(matmul::prepare(ctx, zero, &zeros, &zeros, None, buf));
            }
            if let (Some(b_ih), Some(b_hh)) = (&w.b_ih, &w.b_hh) {
                let b = [b_ih, b_hh].map(|b| storage_init(ctx, "gru bias", &b.to_vec()));
                let gb = [0, 1].map(|_| new_storage(ctx, "gru bias grad", 3 * h, false));
                for k in 0..2 {
                    let split = MatmulParams::new(1, 3 * h, 4 * h).b_trans();
                    parts.mask.push(matmul::prepare(
                        ctx, split, &g.bias, &place[k], None, &gb[k],
                    ));
                }
                let fold = MatmulParams::new(1, 4 * h, 3 * h);
                parts.pack.extend([
                    matmul::prepare(ctx, fold, &b[1], &place[1], None, &p.bias),
                    matmul::prepare(ctx, fold.accumulate(), &b[0], &place[0], None, &p.bias),
                ]);
                parts.biases.push(b);
                parts.bias_grads.push(gb);
            }
        }
        Ok(parts)
    }

    /// Records the gradient fix-up (after the backward, before the clip and update).
    pub fn record_mask(&self, encoder: &mut wgpu::CommandEncoder) {
        record(encoder, "gru gradient mask", &self.mask);
    }

    /// Records the packed bias's rebuild (after an update).
    pub fn record_pack(&self, encoder: &mut wgpu::CommandEncoder) {
        record(encoder, "gru bias pack", &self.pack);
    }
}

fn record(encoder: &mut wgpu::CommandEncoder, label: &str, dispatches: &[Dispatch]) {
    if dispatches.is_empty() {
        return;
    }
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    });
    for d in dispatches {
        d.record(&mut pass);
    }
}

/// `[3H, 4H]` with a one where GRU bias row `g·H + j` sits in the packed interleaved
/// bias (`4j + slot_g`).
fn placement(h: usize, slots: [usize; 3]) -> Vec<f32> {
    let mut m = vec![0.0; 12 * h * h];
    for (g, &slot) in slots.iter().enumerate() {
        for j in 0..h {
            m[(g * h + j) * 4 * h + 4 * j + slot] = 1.0;
        }
    }
    m
}

impl GpuClassifier {
    /// `host` (a GRU model's parameters or moments) as one vector per optimizer slot.
    pub(super) fn gru_slot_vectors(&self, host: &GruClassifierParams) -> Result<Vec<Vec<f32>>> {
        let parts = self.gru_parts()?;
        let mut want = host.gru.config.clone();
        want.batch_first = parts.config.batch_first;
        if want != parts.config || host.dense.classes() != self.classes {
            return Err(LstmError::shape(
                "GRU parameter-shaped tensors",
                format!("{:?} with {} classes", parts.config, self.classes),
                format!(
                    "{:?} with {} classes",
                    host.gru.config,
                    host.dense.classes()
                ),
            ));
        }
        host.gru.validate()?;
        let mut out = Vec::new();
        for l in &host.gru.layers {
            let [w_ih, _, w_rec, _] = pack::gru_layer(l);
            out.extend([w_ih, w_rec]);
            if let (Some(b_ih), Some(b_hh)) = (&l.b_ih, &l.b_hh) {
                out.extend([b_ih.to_vec(), b_hh.to_vec()]);
            }
        }
        let d = &host.dense;
        out.push(d.weight.as_standard_layout().iter().copied().collect());
        out.push(d.bias.to_vec());
        Ok(out)
    }

    /// Inverse of [`gru_slot_vectors`](Self::gru_slot_vectors); the padded slots are
    /// dropped (they are zero: see the module header).
    pub(super) fn gru_from_slot_vectors(&self, data: Vec<Vec<f32>>) -> Result<GruClassifierParams> {
        let cfg = &self.gru_parts()?.config;
        let h = cfg.hidden_size;
        let mut data = data.into_iter();
        let mut next = || {
            data.next().ok_or_else(|| {
                LstmError::value("GRU parameter readback", "fewer buffers than planned")
            })
        };
        let mut layers = Vec::new();
        for i in 0..cfg.num_layers * cfg.num_directions() {
            let input = cfg.layer_input_size(i / cfg.num_directions());
            let (w_ih, w_rec) = (next()?, next()?);
            let slots = LayerWeights {
                w_ih: pack::deinterleave_rows(&w_ih, input),
                w_hh: pack::deinterleave_rows(&w_rec, h),
                b_ih: None,
                b_hh: None,
                peephole: PeepholeWeights::None,
            };
            let w = pack::gru_from_slots(&slots);
            let (b_ih, b_hh) = if cfg.bias {
                (Some(next()?.into()), Some(next()?.into()))
            } else {
                (None, None)
            };
            layers.push(GruLayerWeights { b_ih, b_hh, ..w });
        }
        let (w, b) = (next()?, next()?);
        let weight = Array2::from_shape_vec((self.classes, cfg.output_size()), w)
            .map_err(|e| LstmError::shape("fc.weight readback", "[C, F]", e.to_string()))?;
        Ok(GruClassifierParams {
            gru: GruWeights {
                config: cfg.clone(),
                layers,
            },
            dense: Dense {
                weight,
                bias: b.into(),
            },
        })
    }

    pub(super) fn gru_parts(&self) -> Result<&GruParts> {
        self.gru
            .as_ref()
            .ok_or_else(|| LstmError::Config("this GPU classifier is an LSTM, not a GRU".into()))
    }
}

impl GpuClassifier {
    /// Every value the padded slots hold — the weights (w_ih slot 2, w_rec slot 3) and
    /// their optimizer moments — for tests: each must stay exactly zero however long
    /// the model trains. An error for an LSTM classifier.
    #[doc(hidden)]
    pub fn gru_padding(&self) -> Result<Vec<f32>> {
        let cfg = &self.gru_parts()?.config;
        let h = cfg.hidden_size;
        let per_layer = if cfg.bias { 4 } else { 2 };
        let (m, v) = self.opt.moments();
        let mut out = Vec::new();
        for (i, w) in self.lstm.weights.layers.iter().enumerate() {
            let input = cfg.layer_input_size(i / cfg.num_directions());
            let at = i * per_layer;
            let bufs = [&w.w_ih, &m[at], &v[at], &w.w_rec, &m[at + 1], &v[at + 1]];
            let data = self.read_slots(&bufs)?;
            for (k, d) in data.iter().enumerate() {
                let (width, slot) = if k < 3 { (input, 2) } else { (h, 3) };
                for j in 0..h {
                    let row = (4 * j + slot) * width;
                    out.extend_from_slice(&d[row..row + width]);
                }
            }
        }
        Ok(out)
    }
}

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

use crate::error::Result;
use crate::gpu::kernels::matmul::{self, MatmulParams};
use crate::gpu::kernels::Dispatch;
use crate::gpu::{new_storage, storage_init, GpuContext, LayerBuffers};
use crate::gru::{GruConfig, GruWeights};

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

    /// Records the gradient fix-up of `parts`, if any (after the backward, before the
    /// clip and the update).
    pub fn record_mask(parts: Option<&Self>, encoder: &mut wgpu::CommandEncoder) {
        if let Some(p) = parts {
            record(encoder, "gru gradient mask", &p.mask);
        }
    }

    /// Records the packed bias's rebuild, if any (after an update).
    pub fn record_pack(parts: Option<&Self>, encoder: &mut wgpu::CommandEncoder) {
        if let Some(p) = parts {
            record(encoder, "gru bias pack", &p.pack);
        }
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

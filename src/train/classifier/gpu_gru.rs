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
//!   bias is rebuilt from them ([`GruParts::pack`]). Both maps are strided copies run
//!   by the GEMM kernel (`H × 1` times a `[1.0]`, a stride of 4 on the packed side): one
//!   product per output, exact in f32, and O(H) memory.

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
        let one = storage_init(ctx, "one", &[1.0]);
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
                for (k, slots) in [IH_SLOTS, HH_SLOTS].iter().enumerate() {
                    for (gate, &slot) in slots.iter().enumerate() {
                        // own[gate·H + j] = packed[4j + slot]
                        let split = MatmulParams::new(h, 1, 1).lda(4).offsets(slot, 0, gate * h);
                        let d = matmul::prepare(ctx, split, &g.bias, &one, None, &gb[k]);
                        parts.mask.push(d);
                    }
                }
                parts.pack.extend(pack_bias(ctx, h, &b, &one, &p.bias));
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

/// The dispatches that rebuild the packed bias `[H][4]` from `b = [b_ih, b_hh]`:
/// slots 0–2 from `b_hh` (r, z, n), slot 3 from `b_ih`'s n, then `b_ih`'s r and z added
/// into slots 0 and 1 (so those hold `b_hr + b_ir`, in the CPU's order).
fn pack_bias(
    ctx: &GpuContext,
    h: usize,
    b: &[wgpu::Buffer; 2],
    one: &wgpu::Buffer,
    packed: &wgpu::Buffer,
) -> Vec<Dispatch> {
    // packed[4j + slot] (+)= own[gate·H + j]
    let copy =
        |gate: usize, slot: usize| MatmulParams::new(h, 1, 1).ldc(4).offsets(gate * h, 0, slot);
    let mut out: Vec<Dispatch> = (0..3)
        .map(|gate| matmul::prepare(ctx, copy(gate, HH_SLOTS[gate]), &b[1], one, None, packed))
        .collect();
    out.push(matmul::prepare(
        ctx,
        copy(2, IH_SLOTS[2]),
        &b[0],
        one,
        None,
        packed,
    ));
    for (gate, &slot) in IH_SLOTS.iter().enumerate().take(2) {
        let add = copy(gate, slot).accumulate();
        out.push(matmul::prepare(ctx, add, &b[0], one, None, packed));
    }
    out
}

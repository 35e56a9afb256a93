//! An LSTM's weights on the GPU, in the kernels' layout (`pack.rs`), uploaded once.

use super::buffers::{new_storage, storage_init, storage_u32};
use super::context::GpuContext;
use super::kernels::Cell;
use super::pack;
use crate::config::{LstmConfig, Peephole};
use crate::error::{LstmError, Result};
use crate::gru::GruWeights;
use crate::weights::LstmWeights;

/// Weights (or their gradients) of one layer-direction on the GPU.
pub(crate) struct LayerBuffers {
    /// `[4H, I]`, rows unit-interleaved.
    pub w_ih: wgpu::Buffer,
    /// `[4H]` unit-interleaved `b_ih + b_hh`.
    pub bias: wgpu::Buffer,
    /// `[H][4][K]` with `K = H` or `2H` (`[W_hh | W_ch]` for Full peepholes).
    pub w_rec: wgpu::Buffer,
    /// `[3H]` diagonal peepholes (a placeholder in other modes).
    pub peep: wgpu::Buffer,
}

/// Every layer-direction's weights on one GPU, with the config they belong to.
pub(crate) struct GpuWeights {
    /// The layout (sizes, layers, directions); a GRU's has no peepholes.
    pub config: LstmConfig,
    pub layers: Vec<LayerBuffers>,
    /// Which step kernel runs these weights.
    pub cell: Cell,
}

impl GpuWeights {
    /// Validates and uploads `weights`; fails if a weight matrix exceeds the device's limits.
    pub fn upload(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        Self::upload_lstm(ctx, weights, Cell::Lstm)
    }

    /// [`Self::upload`] with the recurrent weights stored as f16 (`weights_f16.wgsl`,
    /// two to a u32, rounded to nearest even): half the bytes each step reads, f32 math.
    /// For inference; the backward refuses these weights.
    pub fn upload_f16(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        if !ctx.has_f16_unpack() {
            return Err(LstmError::DeviceLimit(
                "f16 weights need shaders that unpack f16 (wgpu's DownlevelFlags::SHADER_F16_IN_F32), which this adapter lacks".into(),
            ));
        }
        Self::upload_lstm(ctx, weights, Cell::LstmF16)
    }

    fn upload_lstm(ctx: &GpuContext, weights: &LstmWeights, cell: Cell) -> Result<Self> {
        weights.validate()?;
        weights.check_finite()?;
        let packed = weights.layers.iter().map(|w| {
            [
                pack::interleave_rows(w.w_ih.view()),
                pack::interleave_vec(w.combined_bias().view()),
                pack::recurrent_matrix(w),
                pack::peephole_vec(w),
            ]
        });
        Self::upload_packed(ctx, weights.config.clone(), cell, packed)
    }

    /// Uploads a GRU in the LSTM's four gate slots (`pack::gru_layer`, the same for
    /// both forms); the cell picks the step kernel: `gru_step` for the reset gate after
    /// the recurrent product (PyTorch, Keras's default), `gru_reset_before_step` for
    /// the reset gate before it (Keras `reset_after=False`, ONNX `linear_before_reset=0`).
    pub fn upload_gru(ctx: &GpuContext, weights: &GruWeights) -> Result<Self> {
        weights.validate()?;
        weights.check_finite()?;
        let cell = match weights.config.reset_after {
            true => Cell::Gru,
            false => Cell::GruResetBefore,
        };
        let packed = weights.layers.iter().map(pack::gru_layer);
        Self::upload_packed(ctx, weights.config.layout(), cell, packed)
    }

    /// Checks the matrices against the binding limit, then uploads each layer-direction's
    /// `[w_ih, bias, w_rec, peep]` in the kernels' layout.
    fn upload_packed(
        ctx: &GpuContext,
        config: LstmConfig,
        cell: Cell,
        packed: impl Iterator<Item = [Vec<f32>; 4]>,
    ) -> Result<Self> {
        let h = config.hidden_size;
        let limit = ctx.max_binding_bytes();
        let rec = 4 * h * config.recurrent_width();
        for l in 0..config.num_layers {
            // A reset-before GRU's dW_rec is twice w_rec (see `zeros_like`): refused here,
            // at construction, rather than when the first backward binds it.
            let grad = (cell == Cell::GruResetBefore).then_some(("recurrent gradient", 2 * rec));
            for (name, floats) in [
                ("weight_ih", 4 * h * config.layer_input_size(l)),
                ("recurrent weights", rec),
            ]
            .into_iter()
            .chain(grad)
            {
                let bytes = 4 * floats as u64;
                if bytes > limit {
                    return Err(LstmError::DeviceLimit(format!(
                        "{name} of layer {l} needs a {bytes}-byte storage binding, the device \
                         allows {limit} (max_storage_buffer_binding_size)"
                    )));
                }
            }
        }
        ctx.kernels()?;
        let layers = ctx.scoped("uploading weights", || {
            Ok(packed
                .map(|[w_ih, bias, w_rec, peep]| LayerBuffers {
                    w_ih: storage_init(ctx, "w_ih", &w_ih),
                    bias: storage_init(ctx, "bias", &bias),
                    w_rec: match cell {
                        Cell::LstmF16 => storage_u32(ctx, "w_rec f16", &pack::f16_pairs(&w_rec)),
                        _ => storage_init(ctx, "w_rec", &w_rec),
                    },
                    peep: storage_init(ctx, "peephole", &peep),
                })
                .collect())
        })?;
        Ok(GpuWeights {
            config,
            layers,
            cell,
        })
    }

    /// Zeroed buffers shaped like these weights (their gradients).
    pub fn zeros_like(&self, ctx: &GpuContext) -> Vec<LayerBuffers> {
        let g = |w: &wgpu::Buffer| new_storage(ctx, "grad", (w.size() / 4) as usize, false);
        // A reset-before GRU's dW_rec spans h and r ⊙ h (see backward_job.rs): twice
        // w_rec, which `upload_packed` checked against the binding limit.
        let rec_width = if self.cell == Cell::GruResetBefore {
            2
        } else {
            1
        };
        self.layers
            .iter()
            .map(|l| LayerBuffers {
                w_ih: g(&l.w_ih),
                bias: g(&l.bias),
                w_rec: new_storage(
                    ctx,
                    "grad",
                    rec_width * (l.w_rec.size() / 4) as usize,
                    false,
                ),
                peep: g(&l.peep),
            })
            .collect()
    }

    /// The shaders' peephole mode code: 0 None, 1 Diagonal, 2 Full.
    pub fn peephole_code(&self) -> u32 {
        match self.config.peephole {
            Peephole::None => 0,
            Peephole::Diagonal => 1,
            Peephole::Full => 2,
        }
    }
}

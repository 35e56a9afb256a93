//! An LSTM's weights on the GPU, in the kernels' layout (`pack.rs`), uploaded once.

use super::buffers::{new_storage, storage_init};
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
        Self::upload_packed(ctx, weights.config.clone(), Cell::Lstm, packed)
    }

    /// Uploads a GRU in the LSTM's four gate slots (`pack::gru_layer`). The GPU runs the
    /// reset gate after the recurrent product (PyTorch, Keras's default); the other
    /// form is the CPU path's for now, and asking for it here is an error.
    pub fn upload_gru(ctx: &GpuContext, weights: &GruWeights) -> Result<Self> {
        weights.validate()?;
        weights.check_finite()?;
        if !weights.config.reset_after {
            return Err(LstmError::Config(
                "a GRU with reset_after = false (Keras reset_after=False, ONNX linear_before_reset=0) runs on the CPU path only"
                    .into(),
            ));
        }
        let packed = weights.layers.iter().map(pack::gru_layer);
        Self::upload_packed(ctx, weights.config.layout(), Cell::Gru, packed)
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
        for l in 0..config.num_layers {
            for (name, floats) in [
                ("weight_ih", 4 * h * config.layer_input_size(l)),
                ("recurrent weights", 4 * h * config.recurrent_width()),
            ] {
                let bytes = 4 * floats as u64;
                if bytes > limit {
                    return Err(LstmError::DeviceLimit(format!(
                        "{name} of layer {l} needs a {bytes}-byte storage binding, the device allows {limit}"
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
                    w_rec: storage_init(ctx, "w_rec", &w_rec),
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
        self.layers
            .iter()
            .map(|l| LayerBuffers {
                w_ih: g(&l.w_ih),
                bias: g(&l.bias),
                w_rec: g(&l.w_rec),
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

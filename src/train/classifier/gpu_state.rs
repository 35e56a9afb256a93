//! Tensors shaped like the GPU classifier's parameters — the parameters themselves, or
//! one optimizer moment per parameter — moved between their GPU layout (`gpu::pack`,
//! the optimizer's slot order) and the host layout of [`ClassifierParams`].

use ndarray::{Array1, Array2};

use super::gpu::GpuClassifier;
use super::model::{ClassifierParams, Dense};
use crate::config::Peephole;
use crate::error::{LstmError, Result};
use crate::gpu::pack;
use crate::weights::{LayerWeights, LstmWeights};

impl GpuClassifier {
    /// Reads `bufs` (one per optimizer slot, in [`GpuClassifier::slots`] order) into the
    /// host layout. `b_hh` comes back zero: the GPU trains one folded bias.
    pub(super) fn read_like_params(&self, bufs: &[&wgpu::Buffer]) -> Result<ClassifierParams> {
        self.params_from_slots(self.read_slots(bufs)?)
    }

    /// The contents of `bufs`, one vector each (one readback).
    pub(super) fn read_slots(&self, bufs: &[&wgpu::Buffer]) -> Result<Vec<Vec<f32>>> {
        let ctx = self.context();
        let sources: Vec<(&wgpu::Buffer, u64)> = bufs.iter().map(|b| (*b, b.size())).collect();
        let encoder = ctx.device.create_command_encoder(&Default::default());
        ctx.scoped("reading parameter-shaped tensors", || {
            ctx.submit_and_read(encoder, &sources)
        })
    }

    /// Writes `host` (the layout [`read_like_params`](Self::read_like_params) returns)
    /// into `bufs`, one per optimizer slot.
    pub(super) fn write_like_params(
        &self,
        host: &ClassifierParams,
        bufs: &[&wgpu::Buffer],
    ) -> Result<()> {
        self.write_slots(&self.slot_vectors(host)?, bufs)
    }

    /// Writes `vectors` into `bufs`, one each, after checking every size.
    pub(super) fn write_slots(&self, vectors: &[Vec<f32>], bufs: &[&wgpu::Buffer]) -> Result<()> {
        if vectors.len() != bufs.len() {
            return Err(LstmError::shape(
                "parameter-shaped tensors",
                format!("{} tensors", bufs.len()),
                vectors.len().to_string(),
            ));
        }
        for (v, b) in vectors.iter().zip(bufs) {
            if 4 * v.len() as u64 != b.size() {
                return Err(LstmError::shape(
                    "parameter-shaped tensor",
                    format!("{} floats", b.size() / 4),
                    v.len().to_string(),
                ));
            }
        }
        let ctx = self.context();
        ctx.scoped("writing parameter-shaped tensors", || {
            for (v, b) in vectors.iter().zip(bufs) {
                ctx.queue.write_buffer(b, 0, bytemuck::cast_slice(v));
            }
            Ok(())
        })
    }

    /// `host` in the GPU layout, one vector per optimizer slot.
    fn slot_vectors(&self, host: &ClassifierParams) -> Result<Vec<Vec<f32>>> {
        let cfg = self.lstm.config();
        host.validate()?;
        let mut want = host.lstm.config.clone();
        want.batch_first = cfg.batch_first;
        if want != *cfg || host.dense.classes() != self.classes {
            return Err(LstmError::shape(
                "parameter-shaped tensors",
                format!("{cfg:?} with {} classes", self.classes),
                format!(
                    "{:?} with {} classes",
                    host.lstm.config,
                    host.dense.classes()
                ),
            ));
        }
        let mut out = Vec::new();
        for l in &host.lstm.layers {
            out.push(pack::interleave_rows(l.w_ih.view()));
            out.push(pack::recurrent_matrix(l));
            if cfg.bias {
                out.push(pack::interleave_vec(l.combined_bias().view()));
            }
            if cfg.peephole == Peephole::Diagonal {
                out.push(pack::peephole_vec(l));
            }
        }
        out.push(
            host.dense
                .weight
                .as_standard_layout()
                .iter()
                .copied()
                .collect(),
        );
        out.push(host.dense.bias.to_vec());
        Ok(out)
    }

    /// Inverse of [`slot_vectors`](Self::slot_vectors).
    fn params_from_slots(&self, data: Vec<Vec<f32>>) -> Result<ClassifierParams> {
        let cfg = self.lstm.config();
        let mut data = data.into_iter();
        let short = || LstmError::value("parameter readback", "fewer buffers than planned");
        let mut next = || data.next().ok_or_else(short);
        let mut layers: Vec<LayerWeights> = Vec::new();
        for l in 0..cfg.num_layers {
            for _ in 0..cfg.num_directions() {
                let (w_ih, w_rec) = (next()?, next()?);
                let bias = if cfg.bias { next()? } else { Vec::new() };
                let peep = match cfg.peephole {
                    Peephole::Diagonal => next()?,
                    _ => Vec::new(),
                };
                layers.push(pack::layer_from_gpu(
                    &[w_ih, bias, w_rec, peep],
                    cfg.layer_input_size(l),
                    cfg.hidden_size,
                    cfg.bias,
                    cfg.peephole,
                    Some(Array1::zeros(4 * cfg.hidden_size)),
                ));
            }
        }
        let (w, b) = (next()?, next()?);
        let weight = Array2::from_shape_vec((self.classes, cfg.output_size()), w)
            .map_err(|e| LstmError::shape("fc.weight readback", "[C, F]", e.to_string()))?;
        Ok(ClassifierParams {
            lstm: LstmWeights {
                config: cfg.clone(),
                layers,
            },
            dense: Dense {
                weight,
                bias: Array1::from(b),
            },
        })
    }
}

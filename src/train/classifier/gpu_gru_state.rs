//! The GPU GRU classifier's tensors moved between the GPU's layout — the GRU's weights
//! in the LSTM's gate slots, its biases as they are (`gpu_gru.rs`) — and the host
//! layout of [`GruClassifierParams`]: parameters, optimizer moments, and (for tests)
//! the padded slots' contents.

use ndarray::Array2;

use super::gpu::GpuClassifier;
use super::gpu_gru::GruParts;
use super::model::{Dense, GruClassifierParams};
use crate::error::{LstmError, Result};
use crate::gpu::pack;
use crate::gru::{GruLayerWeights, GruWeights};
use crate::weights::{LayerWeights, PeepholeWeights};

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
            // Weights (not gradients) in reset_after = true's slots: new_gru refuses the other form.
            let w = pack::gru_from_slots(&slots, true);
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

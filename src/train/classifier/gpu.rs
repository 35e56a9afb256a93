//! The GPU backend of [`Classifier`]: LSTM (or GRU, `gpu_gru.rs`) → Dense → softmax cross-entropy → backward
//! → optimizer, all recorded into one command encoder per step (`gpu_record.rs`).
//! Parameters, gradients and optimizer state stay on the GPU; a step reads back only
//! the loss, when asked.

use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayView3};

use super::gpu_gru::GruParts;
use super::gpu_job::{ClassifierJob, Pass, SplitStep};
use super::model::GruClassifierParams;
use super::model::{Batch, Classifier, ClassifierParams, Dense, OptimizerState, StepStats};
use crate::config::Peephole;
use crate::error::{LstmError, Result};
use crate::gpu::kernels::optimizer_update::GpuOptimizer;
use crate::gpu::{new_storage, storage_init, GpuContext, GpuLstm, GpuWeights, LayerBuffers};
use crate::train::optimizer::TrainConfig;

pub struct GpuClassifier {
    pub(super) lstm: GpuLstm,
    pub(super) dense_w: wgpu::Buffer,
    pub(super) dense_b: wgpu::Buffer,
    pub(super) grads: Vec<LayerBuffers>,
    pub(super) dense_gw: wgpu::Buffer,
    pub(super) dense_gb: wgpu::Buffer,
    pub(super) opt: GpuOptimizer,
    pub(super) cfg: TrainConfig,
    pub(super) classes: usize,
    pub(super) step: u64,
    /// `[Σ loss·w, Σ correct]` of the training steps since the last `take_running_stats`.
    pub(super) running: wgpu::Buffer,
    /// `Σ w` of those steps (known on the host).
    pub(super) running_count: f32,
    /// The buffers and bind groups of the last training and evaluation shapes, reused
    /// while the shape repeats (a repeated step creates nothing).
    pub(super) train_job: Mutex<Option<ClassifierJob>>,
    /// Where a step's or an epoch's `(loss, correct)` is read back (8 bytes, kept).
    pub(super) stats_staging: wgpu::Buffer,
    pub(super) eval_job: Mutex<Option<ClassifierJob>>,
    /// What `apply_gradients` keeps between steps (made on its first call).
    pub(super) split: Option<SplitStep>,
    /// A GRU's own biases and fix-ups (`gpu_gru.rs`); `None` for an LSTM.
    pub(super) gru: Option<GruParts>,
}

impl GpuClassifier {
    /// An LSTM classifier; its two biases train as one (see the module list's note).
    pub fn new(ctx: Arc<GpuContext>, params: &ClassifierParams, cfg: TrainConfig) -> Result<Self> {
        params.validate()?;
        let mut p = params.clone();
        p.lstm.layers.iter_mut().for_each(super::model::fold_biases);
        let lstm = GpuLstm::new(ctx, &p.lstm)?;
        Self::build(lstm, &p.dense, cfg, |_, _| Ok(None))
    }

    /// A GRU classifier: the same model as [`super::GruClassifier`] (both biases
    /// trained, as there), run by the LSTM's schedule with the GRU's step kernels.
    pub fn new_gru(
        ctx: Arc<GpuContext>,
        params: &GruClassifierParams,
        cfg: TrainConfig,
    ) -> Result<Self> {
        super::gru_cpu::check_params(params)?;
        if !params.gru.config.reset_after {
            // The padded-slot masks and the bias split assume PyTorch's form; the
            // reset-before GRU keeps ∂n in another slot (see pack::gru_from_slots).
            return Err(LstmError::Config(
                "the GPU GRU classifier trains reset_after = true (PyTorch's GRU) only; \
                 train reset_after = false on the CPU path"
                    .into(),
            ));
        }
        let uploaded = GpuWeights::upload_gru(&ctx, &params.gru)?;
        let lstm = GpuLstm::from_uploaded(ctx, uploaded);
        Self::build(lstm, &params.dense, cfg, |lstm, grads| {
            let parts = GruParts::new(lstm.context(), &params.gru, &lstm.weights.layers, grads)?;
            Ok(Some(parts))
        })
    }

    /// The classifier around `lstm` (uploaded) with head `dense`; `cell_parts` adds
    /// what a GRU needs, given the weights and their gradient buffers.
    fn build(
        lstm: GpuLstm,
        dense: &Dense,
        cfg: TrainConfig,
        cell_parts: impl FnOnce(&GpuLstm, &[LayerBuffers]) -> Result<Option<GruParts>>,
    ) -> Result<Self> {
        let ctx = lstm.context().clone();
        let to_vec = |a: &Array2<f32>| a.as_standard_layout().iter().copied().collect::<Vec<_>>();
        let dense_w = storage_init(&ctx, "fc.weight", &to_vec(&dense.weight));
        let dense_b = storage_init(&ctx, "fc.bias", &dense.bias.to_vec());
        let grads = lstm.weights.zeros_like(&ctx);
        let gru = cell_parts(&lstm, &grads)?;
        let dense_gw = new_storage(&ctx, "fc.weight grad", dense.weight.len(), false);
        let dense_gb = new_storage(&ctx, "fc.bias grad", dense.bias.len(), false);
        let mut gc = GpuClassifier {
            lstm,
            dense_w,
            dense_b,
            grads,
            dense_gw,
            dense_gb,
            opt: GpuOptimizer::new(&ctx, &[]),
            cfg,
            classes: dense.classes(),
            step: 0,
            running: new_storage(&ctx, "running totals", 2, false),
            running_count: 0.0,
            train_job: Mutex::new(None),
            stats_staging: ctx.staging(8),
            eval_job: Mutex::new(None),
            split: None,
            gru,
        };
        let lens: Vec<usize> = gc
            .slots()
            .iter()
            .map(|(p, _)| (p.size() / 4) as usize)
            .collect();
        gc.opt = GpuOptimizer::new(&ctx, &lens);
        Ok(gc)
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        self.lstm.context()
    }

    /// Every trained tensor with its gradient.
    pub(super) fn slots(&self) -> Vec<(&wgpu::Buffer, &wgpu::Buffer)> {
        let mut out = Vec::new();
        let cfg = self.lstm.config();
        for (i, (w, g)) in self.lstm.weights.layers.iter().zip(&self.grads).enumerate() {
            out.extend([(&w.w_ih, &g.w_ih), (&w.w_rec, &g.w_rec)]);
            if let Some(gru) = &self.gru {
                // The GRU trains its own two biases, not the packed one (gpu_gru.rs).
                if let (Some(b), Some(gb)) = (gru.biases.get(i), gru.bias_grads.get(i)) {
                    out.extend([(&b[0], &gb[0]), (&b[1], &gb[1])]);
                }
                continue;
            }
            if cfg.bias {
                out.push((&w.bias, &g.bias));
            }
            if cfg.peephole == Peephole::Diagonal {
                out.push((&w.peep, &g.peep));
            }
        }
        out.extend([
            (&self.dense_w, &self.dense_gw),
            (&self.dense_b, &self.dense_gb),
        ]);
        out
    }
}

impl GpuClassifier {
    /// Records and submits one labelled run of `pass` (training or gradients): its
    /// stats when asked (a readback), and the weight of its rows.
    pub(super) fn run_labelled(
        &self,
        batch: &Batch,
        pass: Pass,
        want_stats: bool,
    ) -> Result<(Option<StepStats>, f32)> {
        let ctx = self.context().clone();
        ctx.scoped("training step", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let targets = Some(batch.targets);
            let rec = self.record(&mut encoder, batch.x, batch.seq_lens, targets, pass)?;
            let stats = if want_stats {
                Some(self.read_stats(encoder, &rec)?)
            } else {
                ctx.queue.submit([encoder.finish()]);
                None
            };
            Ok((stats, rec.count))
        })
    }
}

impl Classifier for GpuClassifier {
    fn train_step(&mut self, batch: &Batch, want_stats: bool) -> Result<Option<StepStats>> {
        let (stats, count) = self.run_labelled(batch, Pass::Train, want_stats)?;
        self.step += 1;
        self.running_count += count;
        Ok(stats)
    }

    fn gradients(
        &mut self,
        batch: &Batch,
        denominator: f32,
        want_stats: bool,
    ) -> Result<(Vec<f32>, Option<StepStats>)> {
        self.lstm_only("split step (gradients)")?;
        self.split_gradients(batch, denominator, want_stats)
    }

    fn apply_gradients(&mut self, grads: &[f32]) -> Result<()> {
        self.lstm_only("split step (apply_gradients)")?;
        self.split_apply(grads)
    }

    fn take_running_stats(&mut self) -> Result<StepStats> {
        let ctx = self.context().clone();
        ctx.scoped("reading running totals", || self.read_running())
    }

    fn evaluate(&self, batch: &Batch) -> Result<StepStats> {
        let ctx = self.context().clone();
        ctx.scoped("evaluation", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let rec = self.record(
                &mut encoder,
                batch.x,
                batch.seq_lens,
                Some(batch.targets),
                Pass::Infer,
            )?;
            self.read_stats(encoder, &rec)
        })
    }

    fn logits(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Array2<f32>> {
        let ctx = self.context().clone();
        let data = ctx.scoped("logits", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let rec = self.record(&mut encoder, x, seq_lens, None, Pass::Infer)?;
            ctx.submit_and_read(encoder, &[(&rec.logits, rec.logits.size())])
        })?;
        let v = data.into_iter().next().unwrap_or_default();
        let rows = v.len() / self.classes;
        Array2::from_shape_vec((rows, self.classes), v)
            .map_err(|e| LstmError::shape("logits readback", "[rows, classes]", e.to_string()))
    }

    fn params(&self) -> Result<ClassifierParams> {
        self.lstm_only("parameters")?;
        let params: Vec<&wgpu::Buffer> = self.slots().iter().map(|s| s.0).collect();
        self.read_like_params(&params)
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    fn device_name(&self) -> String {
        format!("GPU: {}", self.context().describe())
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        self.lstm_only("optimizer state")?;
        let (m, v) = self.opt.moments();
        Ok(OptimizerState {
            step: self.step,
            m: self.read_like_params(&m.iter().collect::<Vec<_>>())?,
            v: self.read_like_params(&v.iter().collect::<Vec<_>>())?,
        })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.lstm_only("optimizer state")?;
        let (m, v) = self.opt.moments();
        self.write_like_params(&state.m, &m.iter().collect::<Vec<_>>())?;
        self.write_like_params(&state.v, &v.iter().collect::<Vec<_>>())?;
        self.step = state.step;
        Ok(())
    }

    fn gru_params(&self) -> Result<GruClassifierParams> {
        let params: Vec<&wgpu::Buffer> = self.slots().iter().map(|s| s.0).collect();
        self.gru_from_slot_vectors(self.read_slots(&params)?)
    }

    fn gru_optimizer_state(&self) -> Result<OptimizerState<GruClassifierParams>> {
        let (m, v) = self.opt.moments();
        let read = |bufs: &[wgpu::Buffer]| {
            self.gru_from_slot_vectors(self.read_slots(&bufs.iter().collect::<Vec<_>>())?)
        };
        Ok(OptimizerState {
            step: self.step,
            m: read(m)?,
            v: read(v)?,
        })
    }

    fn set_gru_optimizer_state(
        &mut self,
        state: &OptimizerState<GruClassifierParams>,
    ) -> Result<()> {
        let (m, v) = self.opt.moments();
        for (host, bufs) in [(&state.m, m), (&state.v, v)] {
            let vectors = self.gru_slot_vectors(host)?;
            self.write_slots(&vectors, &bufs.iter().collect::<Vec<_>>())?;
        }
        self.step = state.step;
        Ok(())
    }
}

impl GpuClassifier {
    /// An error for what only an LSTM classifier has (a GRU's differ in layout).
    fn lstm_only(&self, what: &str) -> Result<()> {
        match self.gru {
            Some(_) => Err(LstmError::Config(format!(
                "a GRU classifier has no LSTM {what}: use the gru_* methods"
            ))),
            None => Ok(()),
        }
    }
}

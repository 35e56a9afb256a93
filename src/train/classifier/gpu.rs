//! The GPU backend of [`Classifier`]: LSTM → Dense → softmax cross-entropy → backward
//! → optimizer, all recorded into one command encoder per step (`gpu_record.rs`).
//! Parameters, gradients and optimizer state stay on the GPU; a step reads back only
//! the loss, when asked.

use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayView3};

use super::gpu_job::{ClassifierJob, Pass, SplitStep};
use super::model::{Batch, Classifier, ClassifierParams, OptimizerState, StepStats};
use crate::config::Peephole;
use crate::error::{LstmError, Result};
use crate::gpu::kernels::optimizer_update::GpuOptimizer;
use crate::gpu::{new_storage, storage_init, GpuContext, GpuLstm, LayerBuffers};
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
}

impl GpuClassifier {
    pub fn new(ctx: Arc<GpuContext>, params: &ClassifierParams, cfg: TrainConfig) -> Result<Self> {
        params.validate()?;
        let mut p = params.clone();
        p.lstm.layers.iter_mut().for_each(super::model::fold_biases);
        let lstm = GpuLstm::new(ctx.clone(), &p.lstm)?;
        let to_vec = |a: &Array2<f32>| a.as_standard_layout().iter().copied().collect::<Vec<_>>();
        let dense_w = storage_init(&ctx, "fc.weight", &to_vec(&p.dense.weight));
        let dense_b = storage_init(&ctx, "fc.bias", &p.dense.bias.to_vec());
        let grads = lstm.weights.zeros_like(&ctx);
        let dense_gw = new_storage(&ctx, "fc.weight grad", p.dense.weight.len(), false);
        let dense_gb = new_storage(&ctx, "fc.bias grad", p.dense.bias.len(), false);
        let mut gc = GpuClassifier {
            lstm,
            dense_w,
            dense_b,
            grads,
            dense_gw,
            dense_gb,
            opt: GpuOptimizer::new(&ctx, &[]),
            cfg,
            classes: p.dense.classes(),
            step: 0,
            running: new_storage(&ctx, "running totals", 2, false),
            running_count: 0.0,
            train_job: Mutex::new(None),
            stats_staging: ctx.staging(8),
            eval_job: Mutex::new(None),
            split: None,
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
        for (w, g) in self.lstm.weights.layers.iter().zip(&self.grads) {
            out.extend([(&w.w_ih, &g.w_ih), (&w.w_rec, &g.w_rec)]);
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
        self.split_gradients(batch, denominator, want_stats)
    }

    fn apply_gradients(&mut self, grads: &[f32]) -> Result<()> {
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
        let (m, v) = self.opt.moments();
        Ok(OptimizerState {
            step: self.step,
            m: self.read_like_params(&m.iter().collect::<Vec<_>>())?,
            v: self.read_like_params(&v.iter().collect::<Vec<_>>())?,
        })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        let (m, v) = self.opt.moments();
        self.write_like_params(&state.m, &m.iter().collect::<Vec<_>>())?;
        self.write_like_params(&state.v, &v.iter().collect::<Vec<_>>())?;
        self.step = state.step;
        Ok(())
    }
}

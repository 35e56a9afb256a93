//! The GPU backend of [`Classifier`]: LSTM → Dense → softmax cross-entropy → backward
//! → optimizer, all recorded into one command encoder per step (`gpu_record.rs`).
//! Parameters, gradients and optimizer state stay on the GPU; a step reads back only
//! the loss, when asked.

use std::sync::{Arc, Mutex};

use ndarray::{Array1, Array2, ArrayView3};

use super::gpu_job::ClassifierJob;
use super::model::{Batch, Classifier, ClassifierParams, Dense, StepStats};
use crate::config::Peephole;
use crate::error::{LstmError, Result};
use crate::gpu::kernels::optimizer_update::GpuOptimizer;
use crate::gpu::{new_storage, pack, storage_init, GpuContext, GpuLstm, LayerBuffers};
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

impl Classifier for GpuClassifier {
    fn train_step(&mut self, batch: &Batch, want_stats: bool) -> Result<Option<StepStats>> {
        let ctx = self.context().clone();
        let stats = ctx.scoped("training step", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let rec = self.record(
                &mut encoder,
                batch.x,
                batch.seq_lens,
                Some(batch.targets),
                true,
            )?;
            let stats = if want_stats {
                Some(self.read_stats(encoder, &rec)?)
            } else {
                ctx.queue.submit([encoder.finish()]);
                None
            };
            Ok((stats, rec.count))
        })?;
        self.step += 1;
        self.running_count += stats.1;
        Ok(stats.0)
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
                false,
            )?;
            self.read_stats(encoder, &rec)
        })
    }

    fn logits(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Array2<f32>> {
        let ctx = self.context().clone();
        let data = ctx.scoped("logits", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            let rec = self.record(&mut encoder, x, seq_lens, None, false)?;
            ctx.submit_and_read(encoder, &[(&rec.logits, rec.logits.size())])
        })?;
        let v = data.into_iter().next().unwrap_or_default();
        let rows = v.len() / self.classes;
        Array2::from_shape_vec((rows, self.classes), v)
            .map_err(|e| LstmError::shape("logits readback", "[rows, classes]", e.to_string()))
    }

    fn params(&self) -> Result<ClassifierParams> {
        let ctx = self.context();
        let cfg = self.lstm.config();
        let mut sources: Vec<(&wgpu::Buffer, u64)> = Vec::new();
        for l in &self.lstm.weights.layers {
            for b in [&l.w_ih, &l.bias, &l.w_rec, &l.peep] {
                sources.push((b, b.size()));
            }
        }
        sources.extend([
            (&self.dense_w, self.dense_w.size()),
            (&self.dense_b, self.dense_b.size()),
        ]);
        let encoder = ctx.device.create_command_encoder(&Default::default());
        let mut data = ctx
            .scoped("reading parameters", || {
                ctx.submit_and_read(encoder, &sources)
            })?
            .into_iter();
        let short = || LstmError::value("parameter readback", "fewer buffers than planned");
        let mut next = || data.next().ok_or_else(short);
        let mut layers = Vec::new();
        for l in 0..cfg.num_layers {
            for _ in 0..cfg.num_directions() {
                let parts = [next()?, next()?, next()?, next()?];
                let zero_hh = Some(Array1::zeros(4 * cfg.hidden_size));
                layers.push(pack::layer_from_gpu(
                    &parts,
                    cfg.layer_input_size(l),
                    cfg.hidden_size,
                    cfg.bias,
                    cfg.peephole,
                    zero_hh,
                ));
            }
        }
        let (w, b) = (next()?, next()?);
        let weight = Array2::from_shape_vec((self.classes, cfg.output_size()), w)
            .map_err(|e| LstmError::shape("fc.weight readback", "[C, F]", e.to_string()))?;
        let dense = Dense {
            weight,
            bias: Array1::from(b),
        };
        Ok(ClassifierParams {
            lstm: crate::weights::LstmWeights {
                config: cfg.clone(),
                layers,
            },
            dense,
        })
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    fn device_name(&self) -> String {
        format!("GPU: {}", self.context().describe())
    }
}

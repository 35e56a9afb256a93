//! The GPU backend of [`Classifier`]: LSTM → Dense → softmax cross-entropy → backward
//! → optimizer, all recorded into one command encoder per step. Parameters, gradients
//! and optimizer state stay on the GPU; a step reads back only the loss, when asked.

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView3};

use super::backward::{grad_buffers, record_backward, GpuUpstream};
use super::context::GpuContext;
use super::kernels::{MatmulParams, XentParams};
use super::model::{storage_init, GpuLstm, GpuState, LayerBuffers};
use super::ops::{self, bind_group, uniform};
use super::optimizer::GpuOptimizer;
use super::pack;
use super::schedule::{new_storage, RunBuffers};
use crate::error::{LstmError, Result};
use crate::sequence::{check_inputs, lengths, to_time_major, zero_state, ForwardOptions};
use crate::train::{
    rows_and_weights, Batch, Classifier, ClassifierParams, Dense, StepStats, Target, TrainConfig,
};
use crate::Peephole;

pub struct GpuClassifier {
    lstm: GpuLstm,
    dense_w: wgpu::Buffer,
    dense_b: wgpu::Buffer,
    grads: Vec<LayerBuffers>,
    dense_gw: wgpu::Buffer,
    dense_gb: wgpu::Buffer,
    opt: GpuOptimizer,
    cfg: TrainConfig,
    classes: usize,
    step: u64,
}

/// What one recorded step leaves behind.
struct Recorded {
    logits: wgpu::Buffer,
    /// `[loss_sum, correct]` when targets were given.
    totals: Option<wgpu::Buffer>,
    count: f32,
}

impl GpuClassifier {
    pub fn new(ctx: Arc<GpuContext>, params: &ClassifierParams, cfg: TrainConfig) -> Result<Self> {
        params.validate()?;
        let mut p = params.clone();
        p.lstm.layers.iter_mut().for_each(crate::train::fold_biases);
        let lstm = GpuLstm::new(ctx.clone(), &p.lstm)?;
        let to_vec = |a: &Array2<f32>| a.as_standard_layout().iter().copied().collect::<Vec<_>>();
        let dense_w = storage_init(&ctx, "fc.weight", &to_vec(&p.dense.weight));
        let dense_b = storage_init(&ctx, "fc.bias", &p.dense.bias.to_vec());
        let grads = grad_buffers(&lstm);
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
    fn slots(&self) -> Vec<(&wgpu::Buffer, &wgpu::Buffer)> {
        let mut out = Vec::new();
        for (w, g) in self.lstm.layers.iter().zip(&self.grads) {
            out.extend([(&w.w_ih, &g.w_ih), (&w.w_rec, &g.w_rec)]);
            if self.lstm.config.bias {
                out.push((&w.bias, &g.bias));
            }
            if self.lstm.config.peephole == Peephole::Diagonal {
                out.push((&w.peep, &g.peep));
            }
        }
        out.extend([
            (&self.dense_w, &self.dense_gw),
            (&self.dense_b, &self.dense_gb),
        ]);
        out
    }

    /// Records forward (+ loss) (+ backward and update when `train`).
    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        x: ArrayView3<f32>,
        seq_lens: Option<&[usize]>,
        targets: Option<&[usize]>,
        train: bool,
    ) -> Result<Recorded> {
        let ctx = self.lstm.context().clone();
        let cfg = self.lstm.config.clone();
        let opts = ForwardOptions {
            initial: None,
            seq_lens,
        };
        let dims = check_inputs(&cfg, &x, &opts)?;
        let (t, b, h, d, c) = (
            dims.t,
            dims.b,
            cfg.hidden_size,
            cfg.num_directions(),
            self.classes,
        );
        let top = (cfg.num_layers - 1) * d;
        let labels = match targets {
            Some(tg) => Some(rows_and_weights(
                &cfg,
                self.cfg.target,
                x.dim(),
                tg,
                seq_lens,
                c,
            )?),
            None => None,
        };
        let plan = self.lstm.plan(t, b)?;
        if plan.count > 1 {
            return Err(LstmError::DeviceLimit(format!(
                "the classifier needs T={t} B={b} in one storage binding"
            )));
        }
        let xt = to_time_major(&cfg, &x);
        let x_buf = storage_init(&ctx, "x", xt.as_slice().expect("standard layout"));
        let zeros = zero_state(&cfg, b);
        let initial = GpuState {
            h: storage_init(&ctx, "h_0", zeros.h.as_slice().expect("standard")),
            c: storage_init(&ctx, "c_0", zeros.c.as_slice().expect("standard")),
        };
        let run: RunBuffers = self.lstm.record(
            encoder,
            &plan,
            b,
            std::slice::from_ref(&x_buf),
            &initial,
            &lengths(dims, &opts),
            train,
        )?;
        let rows = match self.cfg.target {
            Target::LastStep => b,
            Target::EveryStep => t * b,
        };
        let logits = new_storage(&ctx, "logits", rows * c, false);
        let dlogits = new_storage(&ctx, "dlogits", rows * c, false);
        let stats = new_storage(&ctx, "row stats", rows * 2, false);
        let ones = storage_init(&ctx, "ones", &vec![1.0; rows]);
        let dh_n = new_storage(&ctx, "dh_n", cfg.num_layers * d * b * h, false);
        let dy = new_storage(
            &ctx,
            "dy",
            if self.cfg.target == Target::EveryStep {
                rows * d * h
            } else {
                1
            },
            false,
        );
        let totals = labels
            .as_ref()
            .map(|_| new_storage(&ctx, "totals", 2, false));
        let count = labels.as_ref().map_or(0.0, |(_, w)| w.iter().sum::<f32>());
        let k = ctx.kernels()?;
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("dense + loss"),
                timestamp_writes: None,
            });
            let pass = &mut pass;
            let y = &run.y_chunks[0];
            // logits = features · Wᵀ + b
            match self.cfg.target {
                Target::LastStep => {
                    for k in 0..d {
                        let p = MatmulParams::new(b, c, h).b_trans().ldb(d * h).offsets(
                            (top + k) * b * h,
                            k * h,
                            0,
                        );
                        let p = if k == 0 { p.bias() } else { p.accumulate() };
                        ops::matmul(
                            &ctx,
                            pass,
                            p,
                            &run.h_n,
                            &self.dense_w,
                            Some(&self.dense_b),
                            &logits,
                        );
                    }
                }
                Target::EveryStep => ops::matmul(
                    &ctx,
                    pass,
                    MatmulParams::new(rows, c, d * h).b_trans().bias(),
                    y,
                    &self.dense_w,
                    Some(&self.dense_b),
                    &logits,
                ),
            }
            if let (Some((lab, wts)), Some(tot)) = (&labels, &totals) {
                let lab_buf = wgpu::util::DeviceExt::create_buffer_init(
                    &ctx.device,
                    &wgpu::util::BufferInitDescriptor {
                        label: Some("labels"),
                        contents: bytemuck::cast_slice(lab),
                        usage: wgpu::BufferUsages::STORAGE,
                    },
                );
                let w_buf = storage_init(&ctx, "row weights", wts);
                let xp = uniform(
                    &ctx,
                    "xent params",
                    &XentParams {
                        rows: rows as u32,
                        classes: c as u32,
                        scale: 1.0 / count.max(1.0),
                        _pad: 0,
                    },
                );
                let bg = bind_group(
                    &ctx,
                    &k.xent_layout,
                    &[
                        xp.as_entire_binding(),
                        logits.as_entire_binding(),
                        lab_buf.as_entire_binding(),
                        w_buf.as_entire_binding(),
                        dlogits.as_entire_binding(),
                        stats.as_entire_binding(),
                    ],
                );
                pass.set_pipeline(&k.xent);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(rows as u32, 1, 1);
                ops::matmul(
                    &ctx,
                    pass,
                    MatmulParams::new(1, 2, rows),
                    &ones,
                    &stats,
                    None,
                    tot,
                );
            }
            if train {
                // dW = dlogitsᵀ·features,  db = Σ_rows dlogits,  dfeatures = dlogits·W
                ops::matmul(
                    &ctx,
                    pass,
                    MatmulParams::new(1, c, rows),
                    &ones,
                    &dlogits,
                    None,
                    &self.dense_gb,
                );
                match self.cfg.target {
                    Target::LastStep => {
                        for k in 0..d {
                            let gw = MatmulParams::new(c, h, b).a_trans().ldc(d * h).offsets(
                                0,
                                (top + k) * b * h,
                                k * h,
                            );
                            ops::matmul(&ctx, pass, gw, &dlogits, &run.h_n, None, &self.dense_gw);
                            let dh = MatmulParams::new(b, h, c).ldb(d * h).offsets(
                                0,
                                k * h,
                                (top + k) * b * h,
                            );
                            ops::matmul(&ctx, pass, dh, &dlogits, &self.dense_w, None, &dh_n);
                        }
                    }
                    Target::EveryStep => {
                        ops::matmul(
                            &ctx,
                            pass,
                            MatmulParams::new(c, d * h, rows).a_trans(),
                            &dlogits,
                            y,
                            None,
                            &self.dense_gw,
                        );
                        ops::matmul(
                            &ctx,
                            pass,
                            MatmulParams::new(rows, d * h, c),
                            &dlogits,
                            &self.dense_w,
                            None,
                            &dy,
                        );
                    }
                }
            }
        }
        if train {
            let cache = run
                .cache
                .as_ref()
                .ok_or_else(|| LstmError::value("training cache", "missing"))?;
            let up = match self.cfg.target {
                Target::LastStep => GpuUpstream {
                    dy: None,
                    dh_n: Some(&dh_n),
                    dc_n: None,
                },
                Target::EveryStep => GpuUpstream {
                    dy: Some(&dy),
                    dh_n: None,
                    dc_n: None,
                },
            };
            record_backward(&self.lstm, encoder, cache, up, &self.grads)?;
            let (params, grads): (Vec<&wgpu::Buffer>, Vec<&wgpu::Buffer>) =
                self.slots().into_iter().unzip();
            self.opt
                .record(&ctx, encoder, &params, &grads, &self.cfg, self.step + 1)?;
        }
        Ok(Recorded {
            logits,
            totals,
            count,
        })
    }

    fn read_stats(&self, encoder: wgpu::CommandEncoder, rec: &Recorded) -> Result<StepStats> {
        let tot = rec
            .totals
            .as_ref()
            .ok_or_else(|| LstmError::value("targets", "needed for a loss"))?;
        let v = self
            .context()
            .submit_and_read(encoder, &[(tot, 8)])?
            .remove(0);
        Ok(StepStats {
            loss: v[0] / rec.count,
            correct: v[1],
            count: rec.count,
        })
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
            if want_stats {
                Ok(Some(self.read_stats(encoder, &rec)?))
            } else {
                ctx.queue.submit([encoder.finish()]);
                Ok(None)
            }
        })?;
        self.step += 1;
        Ok(stats)
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
        let v = data.into_iter().next().expect("one buffer");
        let rows = v.len() / self.classes;
        Ok(Array2::from_shape_vec((rows, self.classes), v).expect("rows · classes"))
    }

    fn params(&self) -> Result<ClassifierParams> {
        let ctx = self.context();
        let cfg = &self.lstm.config;
        let mut sources: Vec<(&wgpu::Buffer, u64)> = Vec::new();
        for l in &self.lstm.layers {
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
        let mut layers = Vec::new();
        for l in 0..cfg.num_layers {
            for _ in 0..cfg.num_directions() {
                let parts = [data.next(), data.next(), data.next(), data.next()]
                    .map(|p| p.expect("planned readback"));
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
        let w = data.next().expect("fc.weight");
        let b = data.next().expect("fc.bias");
        let dense = Dense {
            weight: Array2::from_shape_vec((self.classes, cfg.output_size()), w).expect("planned"),
            bias: Array1::from(b),
        };
        Ok(ClassifierParams {
            lstm: crate::LstmWeights {
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

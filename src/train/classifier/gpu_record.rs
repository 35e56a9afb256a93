//! Recording one GPU classifier step through a cached [`ClassifierJob`] (`gpu_job.rs`):
//! a training job and an evaluation job, each rebuilt only when the shape changes.

use ndarray::ArrayView3;

use super::gpu::GpuClassifier;
use super::gpu_job::{ClassifierJob, JobModel, Pass, RunData, Sizes};
use super::model::{rows_and_weights, StepStats};
use crate::error::{LstmError, Result};
use crate::sequence::{check_inputs, lengths, to_time_major, ForwardOptions};

/// What one recorded step leaves behind.
pub(super) struct Recorded {
    pub logits: wgpu::Buffer,
    /// `[loss_sum, correct]` when targets were given.
    pub totals: Option<wgpu::Buffer>,
    pub count: f32,
}

impl GpuClassifier {
    /// Records forward (+ loss) (+ backward, + update: see [`Pass`]).
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        x: ArrayView3<f32>,
        seq_lens: Option<&[usize]>,
        targets: Option<&[usize]>,
        pass: Pass,
    ) -> Result<Recorded> {
        let train = pass != Pass::Infer;
        let cfg = self.lstm.config();
        let opts = ForwardOptions {
            initial: None,
            seq_lens,
        };
        let dims = check_inputs(cfg, &x, &opts)?;
        let z = self.sizes(dims.t, dims.b);
        let labels = match targets {
            Some(tg) => Some(rows_and_weights(
                cfg,
                self.cfg.target,
                x.dim(),
                tg,
                seq_lens,
                z.c,
            )?),
            None => None,
        };
        let xt = to_time_major(cfg, &x);
        let lens = lengths(dims, &opts);
        let data = RunData {
            x: xt
                .as_slice()
                .ok_or_else(|| LstmError::value("x", "not contiguous"))?,
            lens: &lens,
            labels: labels.as_ref().map(|(l, w)| (&l[..], &w[..])),
            backward: train,
            rule: (pass == Pass::Train).then(|| self.cfg.update_rule(self.step + 1)),
            scale: match pass {
                Pass::Gradients(denominator) => Some(1.0 / denominator),
                _ => None,
            },
            gru: self.gru.as_ref(),
        };
        let slot = if train {
            &self.train_job
        } else {
            &self.eval_job
        };
        let mut job = slot.lock().unwrap_or_else(|e| e.into_inner());
        if !job.as_ref().is_some_and(|j| j.z == z && j.train == train) {
            *job = Some(ClassifierJob::build(&self.job_model(), z, train)?);
        }
        let job = job
            .as_ref()
            .ok_or_else(|| LstmError::value("classifier", "no job"))?;
        let (logits, totals) = job.run(self.context(), encoder, &data)?;
        Ok(Recorded {
            logits: logits.clone(),
            totals: totals.cloned(),
            count: labels.as_ref().map_or(0.0, |(_, w)| w.iter().sum::<f32>()),
        })
    }

    /// What a job binds of this classifier.
    fn job_model(&self) -> JobModel<'_> {
        JobModel {
            lstm: &self.lstm,
            dense: (&self.dense_w, &self.dense_b),
            dense_grads: (&self.dense_gw, &self.dense_gb),
            grads: &self.grads,
            slots: self.slots(),
            opt: &self.opt,
            running: &self.running,
            target: self.cfg.target,
        }
    }

    /// A call's sizes.
    fn sizes(&self, t: usize, b: usize) -> Sizes {
        let cfg = self.lstm.config();
        let d = cfg.num_directions();
        let (h, c, top) = (cfg.hidden_size, self.classes, (cfg.num_layers - 1) * d);
        Sizes { t, b, h, d, c, top }
    }

    /// The loss and accuracy summed on the GPU since the last call (one readback), then
    /// zeroed.
    pub(super) fn read_running(&mut self) -> Result<StepStats> {
        let ctx = self.context().clone();
        let encoder = ctx.device.create_command_encoder(&Default::default());
        let v = ctx
            .submit_and_read_via(encoder, &[(&self.running, &self.stats_staging, 8)])?
            .remove(0);
        ctx.queue
            .write_buffer(&self.running, 0, bytemuck::cast_slice(&[0.0f32; 2]));
        let count = std::mem::take(&mut self.running_count);
        Ok(StepStats {
            loss: if count > 0.0 { v[0] / count } else { 0.0 },
            correct: v[1],
            count,
        })
    }

    /// Submits `encoder` and reads the step's loss and accuracy (one readback).
    pub(super) fn read_stats(
        &self,
        encoder: wgpu::CommandEncoder,
        rec: &Recorded,
    ) -> Result<StepStats> {
        let tot = rec
            .totals
            .as_ref()
            .ok_or_else(|| LstmError::value("targets", "needed for a loss"))?;
        let v = self
            .context()
            .submit_and_read_via(encoder, &[(tot, &self.stats_staging, 8)])?
            .remove(0);
        Ok(StepStats {
            loss: v[0] / rec.count,
            correct: v[1],
            count: rec.count,
        })
    }
}

//! A GPU training step in two halves, for data-parallel training: `gradients` records
//! the forward and backward as `train_step` does, without the optimizer, and reads the
//! gradients back in the host order (`flat.rs`); `apply_gradients` writes gradients
//! (e.g. summed over ranks) into the gradient buffers and records the optimizer's
//! dispatches, bound once on the first call.

use super::flat::{flatten, unflatten_into};
use super::gpu::GpuClassifier;
use super::gpu_job::{Pass, SplitStep};
use super::model::{check_denominator, Batch, Classifier, StepStats};
use crate::error::{LstmError, Result};

impl GpuClassifier {
    /// Forward and backward of `batch`, the loss scaled by `1/denominator`; the
    /// gradients of every trained tensor in the host order (one readback).
    pub(super) fn split_gradients(
        &mut self,
        batch: &Batch,
        denominator: f32,
        want_stats: bool,
    ) -> Result<(Vec<f32>, Option<StepStats>)> {
        check_denominator(denominator)?;
        let pass = Pass::Gradients(denominator);
        let (stats, count) = self.run_labelled(batch, pass, want_stats)?;
        self.running_count += count;
        let grads: Vec<&wgpu::Buffer> = self.slots().iter().map(|s| s.1).collect();
        let host = self.read_like_params(&grads)?;
        Ok((flatten(&host), stats))
    }

    /// One optimizer step with `grads` (host order) in place of the backward's.
    pub(super) fn split_apply(&mut self, grads: &[f32]) -> Result<()> {
        if self.split.is_none() {
            let (params, bufs): (Vec<&wgpu::Buffer>, Vec<&wgpu::Buffer>) =
                self.slots().into_iter().unzip();
            let optimizer = self.opt.bind(self.context(), &params, &bufs)?;
            self.split = Some(SplitStep {
                template: self.params()?,
                optimizer,
            });
        }
        let split = self
            .split
            .as_ref()
            .ok_or_else(|| LstmError::value("optimizer step", "not bound"))?;
        let mut host = split.template.clone();
        unflatten_into(&mut host, grads)?;
        let bufs: Vec<&wgpu::Buffer> = self.slots().iter().map(|s| s.1).collect();
        self.write_like_params(&host, &bufs)?;
        let rule = self.cfg.update_rule(self.step + 1);
        let ctx = self.context().clone();
        ctx.scoped("optimizer step", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            split.optimizer.record(&ctx, &mut encoder, &rule);
            ctx.queue.submit([encoder.finish()]);
            Ok(())
        })?;
        self.step += 1;
        Ok(())
    }
}

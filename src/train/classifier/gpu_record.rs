//! Recording one GPU classifier step: the LSTM forward, the Dense head and the loss,
//! and (training) the head's gradients, BPTT and the optimizer update — one encoder.

use ndarray::ArrayView3;

use super::gpu::GpuClassifier;
use super::model::{rows_and_weights, StepStats};
use crate::error::{LstmError, Result};
use crate::gpu::kernels::matmul::{matmul, MatmulParams};
use crate::gpu::kernels::softmax_xent::{self, XentBuffers, XentParams};
use crate::gpu::{
    new_storage, record_backward, storage_init, storage_u32, upload_state, GpuUpstream, RunBuffers,
    RunInputs,
};
use crate::sequence::{check_inputs, lengths, to_time_major, zero_state, ForwardOptions};
use crate::train::optimizer::Target;

/// What one recorded step leaves behind.
pub(super) struct Recorded {
    pub logits: wgpu::Buffer,
    /// `[loss_sum, correct]` when targets were given.
    pub totals: Option<wgpu::Buffer>,
    pub count: f32,
}

/// The head's buffers for one call of `rows` feature rows.
struct Head {
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    stats: wgpu::Buffer,
    ones: wgpu::Buffer,
    /// Gradient reaching the LSTM: `dh_n` (last step) or `dy` (every step).
    dh_n: wgpu::Buffer,
    dy: wgpu::Buffer,
    rows: usize,
}

/// Shape of a call: time steps, batch, hidden, directions, classes, top layer's first index.
#[derive(Clone, Copy)]
struct Sizes {
    t: usize,
    b: usize,
    h: usize,
    d: usize,
    c: usize,
    top: usize,
}

impl GpuClassifier {
    /// Records forward (+ loss) (+ backward and update when `train`).
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        x: ArrayView3<f32>,
        seq_lens: Option<&[usize]>,
        targets: Option<&[usize]>,
        train: bool,
    ) -> Result<Recorded> {
        let ctx = self.lstm.context().clone();
        let cfg = self.lstm.config().clone();
        let z = self.sizes(x, seq_lens)?;
        let labels = match targets {
            Some(tg) => Some(rows_and_weights(
                &cfg,
                self.cfg.target,
                x.dim(),
                tg,
                seq_lens,
                z.c,
            )?),
            None => None,
        };
        let run = self.record_lstm(encoder, x, seq_lens, z, train)?;
        let head = self.head_buffers(z, cfg.num_layers);
        let totals = labels
            .as_ref()
            .map(|_| new_storage(&ctx, "totals", 2, false));
        let count = labels.as_ref().map_or(0.0, |(_, w)| w.iter().sum::<f32>());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("dense + loss"),
                timestamp_writes: None,
            });
            let features = (&run.h_n, &run.y_chunks[0]);
            self.record_logits(&mut pass, z, &head, features);
            if let (Some((lab, wts)), Some(tot)) = (&labels, &totals) {
                self.record_loss(&mut pass, z, &head, (lab, wts, count), tot)?;
            }
            if train {
                self.record_head_grads(&mut pass, z, &head, features);
                // The epoch's running totals grow on the GPU: no readback per step.
                let p = MatmulParams::new(1, 2, head.rows).accumulate();
                matmul(
                    &ctx,
                    &mut pass,
                    p,
                    &head.ones,
                    &head.stats,
                    None,
                    &self.running,
                );
            }
        }
        if train {
            self.record_update(encoder, &run, &head)?;
        }
        Ok(Recorded {
            logits: head.logits,
            totals,
            count,
        })
    }

    /// The call's sizes, its inputs checked.
    fn sizes(&self, x: ArrayView3<f32>, seq_lens: Option<&[usize]>) -> Result<Sizes> {
        let cfg = self.lstm.config();
        let opts = ForwardOptions {
            initial: None,
            seq_lens,
        };
        let dims = check_inputs(cfg, &x, &opts)?;
        let d = cfg.num_directions();
        let (h, c, top) = (cfg.hidden_size, self.classes, (cfg.num_layers - 1) * d);
        Ok(Sizes {
            t: dims.t,
            b: dims.b,
            h,
            d,
            c,
            top,
        })
    }

    /// Uploads `x` and records the LSTM forward (with the gate cache when `train`).
    fn record_lstm(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        x: ArrayView3<f32>,
        seq_lens: Option<&[usize]>,
        z: Sizes,
        train: bool,
    ) -> Result<RunBuffers> {
        let (ctx, cfg) = (self.lstm.context(), self.lstm.config());
        let plan = self.lstm.plan(z.t, z.b)?;
        if plan.count > 1 {
            return Err(LstmError::DeviceLimit(format!(
                "the classifier needs T={} B={} in one storage binding",
                z.t, z.b
            )));
        }
        let xt = to_time_major(cfg, &x);
        let x_flat = xt.as_slice().expect("to_time_major gives standard layout");
        let x_buf = storage_init(ctx, "x", x_flat);
        let initial = upload_state(ctx, &zero_state(cfg, z.b));
        let opts = ForwardOptions {
            initial: None,
            seq_lens,
        };
        let lens = lengths(check_inputs(cfg, &x, &opts)?, &opts);
        let inputs = RunInputs {
            x_chunks: std::slice::from_ref(&x_buf),
            initial: &initial,
            lens: &lens,
            b: z.b,
        };
        self.lstm.record(encoder, &plan, &inputs, train)
    }

    fn head_buffers(&self, z: Sizes, layers: usize) -> Head {
        let ctx = self.lstm.context();
        let rows = match self.cfg.target {
            Target::LastStep => z.b,
            Target::EveryStep => z.t * z.b,
        };
        let dy_len = if self.cfg.target == Target::EveryStep {
            rows * z.d * z.h
        } else {
            1
        };
        Head {
            logits: new_storage(ctx, "logits", rows * z.c, false),
            dlogits: new_storage(ctx, "dlogits", rows * z.c, false),
            stats: new_storage(ctx, "row stats", rows * 2, false),
            ones: storage_init(ctx, "ones", &vec![1.0; rows]),
            dh_n: new_storage(ctx, "dh_n", layers * z.d * z.b * z.h, false),
            dy: new_storage(ctx, "dy", dy_len, false),
            rows,
        }
    }

    /// `logits = features · Wᵀ + b`; features: the top layer's `h_n` or the output sequence.
    fn record_logits(
        &self,
        pass: &mut wgpu::ComputePass,
        z: Sizes,
        head: &Head,
        (h_n, y): (&wgpu::Buffer, &wgpu::Buffer),
    ) {
        let ctx = self.lstm.context();
        let (w, b) = (&self.dense_w, Some(&self.dense_b));
        match self.cfg.target {
            Target::LastStep => {
                for k in 0..z.d {
                    let p = MatmulParams::new(z.b, z.c, z.h)
                        .b_trans()
                        .ldb(z.d * z.h)
                        .offsets((z.top + k) * z.b * z.h, k * z.h, 0);
                    let p = if k == 0 { p.bias() } else { p.accumulate() };
                    matmul(ctx, pass, p, h_n, w, b, &head.logits);
                }
            }
            Target::EveryStep => {
                let p = MatmulParams::new(head.rows, z.c, z.d * z.h)
                    .b_trans()
                    .bias();
                matmul(ctx, pass, p, y, w, b, &head.logits);
            }
        }
    }

    /// Softmax cross-entropy per row, then `totals = Σ_rows (loss, correct)`.
    fn record_loss(
        &self,
        pass: &mut wgpu::ComputePass,
        z: Sizes,
        head: &Head,
        (labels, weights, count): (&[u32], &[f32], f32),
        totals: &wgpu::Buffer,
    ) -> Result<()> {
        let ctx = self.lstm.context();
        let lab_buf = storage_u32(ctx, "labels", labels);
        let w_buf = storage_init(ctx, "row weights", weights);
        let p = XentParams {
            rows: head.rows as u32,
            classes: z.c as u32,
            scale: 1.0 / count.max(1.0),
            _pad: 0,
        };
        let bufs = XentBuffers {
            logits: &head.logits,
            labels: &lab_buf,
            weights: &w_buf,
            dlogits: &head.dlogits,
            stats: &head.stats,
        };
        softmax_xent::record(ctx, pass, p, &bufs)?;
        matmul(
            ctx,
            pass,
            MatmulParams::new(1, 2, head.rows),
            &head.ones,
            &head.stats,
            None,
            totals,
        );
        Ok(())
    }

    /// `dW = dlogitsᵀ·features`, `db = Σ_rows dlogits`, `dfeatures = dlogits·W`.
    fn record_head_grads(
        &self,
        pass: &mut wgpu::ComputePass,
        z: Sizes,
        head: &Head,
        (h_n, y): (&wgpu::Buffer, &wgpu::Buffer),
    ) {
        let ctx = self.lstm.context();
        let (dl, w, gw) = (&head.dlogits, &self.dense_w, &self.dense_gw);
        matmul(
            ctx,
            pass,
            MatmulParams::new(1, z.c, head.rows),
            &head.ones,
            dl,
            None,
            &self.dense_gb,
        );
        match self.cfg.target {
            Target::LastStep => {
                for k in 0..z.d {
                    let at = (z.top + k) * z.b * z.h;
                    let p = MatmulParams::new(z.c, z.h, z.b)
                        .a_trans()
                        .ldc(z.d * z.h)
                        .offsets(0, at, k * z.h);
                    matmul(ctx, pass, p, dl, h_n, None, gw);
                    let p = MatmulParams::new(z.b, z.h, z.c)
                        .ldb(z.d * z.h)
                        .offsets(0, k * z.h, at);
                    matmul(ctx, pass, p, dl, w, None, &head.dh_n);
                }
            }
            Target::EveryStep => {
                let p = MatmulParams::new(z.c, z.d * z.h, head.rows).a_trans();
                matmul(ctx, pass, p, dl, y, None, gw);
                let p = MatmulParams::new(head.rows, z.d * z.h, z.c);
                matmul(ctx, pass, p, dl, w, None, &head.dy);
            }
        }
    }

    /// BPTT from the head's gradient, then one optimizer step over every tensor.
    fn record_update(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        run: &crate::gpu::RunBuffers,
        head: &Head,
    ) -> Result<()> {
        let ctx = self.lstm.context();
        let cache = run
            .cache
            .as_ref()
            .ok_or_else(|| LstmError::value("training cache", "missing"))?;
        let up = match self.cfg.target {
            Target::LastStep => GpuUpstream {
                dy: None,
                dh_n: Some(&head.dh_n),
                dc_n: None,
            },
            Target::EveryStep => GpuUpstream {
                dy: Some(&head.dy),
                dh_n: None,
                dc_n: None,
            },
        };
        record_backward(ctx, &self.lstm.weights, encoder, cache, up, &self.grads)?;
        let (params, grads): (Vec<&wgpu::Buffer>, Vec<&wgpu::Buffer>) =
            self.slots().into_iter().unzip();
        let rule = self.cfg.update_rule(self.step + 1);
        self.opt.record(ctx, encoder, &params, &grads, &rule)
    }

    /// The loss and accuracy summed on the GPU since the last call (one readback), then
    /// zeroed.
    pub(super) fn read_running(&mut self) -> Result<StepStats> {
        let ctx = self.context().clone();
        let encoder = ctx.device.create_command_encoder(&Default::default());
        let v = ctx
            .submit_and_read(encoder, &[(&self.running, 8)])?
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
            .submit_and_read(encoder, &[(tot, 8)])?
            .remove(0);
        Ok(StepStats {
            loss: v[0] / rec.count,
            correct: v[1],
            count: rec.count,
        })
    }
}

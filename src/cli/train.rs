//! `lstm-wgpu train` (the default command): the seed article's MNIST model done right —
//! each image row is one time step (T = 28, I = 28), LSTM(256) → Dense(10), softmax
//! cross-entropy, Adam, batch 128 — on the best GPU adapter, or the CPU path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::data::{load_mnist, Mnist};
use lstm_wgpu::plot::{plot_training, EpochPoint};
use lstm_wgpu::train::{
    save_checkpoint, Batch, Classifier, ClassifierParams, CpuClassifier, Init, TrainConfig,
};
use lstm_wgpu::{GpuClassifier, GpuContext, LstmConfig, LstmError, Result};
use ndarray::{Array3, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Peak learning rate (Adam). 8e-3 with the cosine schedule was best on a validation
    /// split (see BENCHMARKS.md); PyTorch's and Keras's examples use a constant 1e-3.
    #[arg(long, default_value_t = 8e-3)]
    pub lr: f32,
    /// constant | cosine (decays to 5% of --lr over the run)
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Clip gradients to this global norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// L2 penalty added to the gradient (torch.optim's weight_decay).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Added to the forget gate's bias at initialisation.
    #[arg(long, default_value_t = 1.0)]
    pub forget_bias: f32,
    /// keras (Glorot + orthogonal) | torch (uniform ±1/√H)
    #[arg(long, default_value = "keras")]
    pub init: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto (a hardware GPU, else the CPU path) | gpu (any adapter, software ones too) | cpu
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Where the checkpoint and the plot go.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Folder with images-idx3-ubyte(.gz) and labels-idx1-ubyte(.gz); the bundled 10k digits by default.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// How many leading examples train (the rest test); 8000 for the bundled digits.
    #[arg(long, default_value_t = 8000)]
    pub train_size: usize,
    /// Hold out this many of the training examples as a validation set and report on it
    /// instead of the test set (for choosing defaults without touching the test set).
    #[arg(long, default_value_t = 0)]
    pub validation: usize,
}

pub fn run(a: &Args) -> Result<()> {
    let (train, test, test_name) = load(a)?;
    println!(
        "data: {} training and {} {test_name} digits (28 rows of 28 pixels each)",
        train.len(),
        test.len()
    );
    let lstm = LstmConfig::new(28, a.hidden).batch_first(true);
    let init = match a.init.as_str() {
        "keras" => Init::Keras,
        "torch" => Init::Torch,
        other => {
            return Err(LstmError::Config(format!(
                "--init must be keras or torch, got {other:?}"
            )))
        }
    };
    let params = ClassifierParams::init_with(init, &lstm, 10, a.forget_bias, a.seed)?;
    let cfg = TrainConfig {
        lr: a.lr,
        clip_norm: (a.clip > 0.0).then_some(a.clip),
        ..Default::default()
    };
    let mut model = backend(a, &params, cfg)?;
    println!("model: LSTM({}) → Dense(10), Adam lr {} ({} schedule), batch {}, clip {}, {} init, forget bias {}", a.hidden, a.lr, a.schedule, a.batch, a.clip, a.init, a.forget_bias);
    println!("device: {}", model.device_name());

    std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
    let steps_per_epoch = train.len().div_ceil(a.batch);
    let total_steps = (a.epochs * steps_per_epoch).max(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    let mut step = 0;
    for epoch in 1..=a.epochs {
        order.shuffle(&mut rng);
        let bar = ProgressBar::new(steps_per_epoch as u64).with_style(
            ProgressStyle::with_template(
                "epoch {prefix:>2} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0.0f64);
        for idx in order.chunks(a.batch) {
            model.set_lr(lr_at(a, step, total_steps));
            let (x, y) = gather(&train, idx);
            let s = model
                .train_step(
                    &Batch {
                        x: x.view(),
                        targets: &y,
                        seq_lens: None,
                    },
                    true,
                )?
                .expect("stats requested");
            if !s.loss.is_finite() {
                bar.abandon();
                return Err(LstmError::value(
                    "training loss",
                    format!("became {} at epoch {epoch}; lower --lr", s.loss),
                ));
            }
            loss_sum += (s.loss * s.count) as f64;
            correct += s.correct as f64;
            seen += s.count as f64;
            step += 1;
            bar.set_message(format!(
                "loss {:.4} acc {:.2}%",
                loss_sum / seen,
                100.0 * correct / seen
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let secs = t0.elapsed().as_secs_f64();
        let test_acc = accuracy(model.as_ref(), &test)?;
        let point = EpochPoint {
            epoch,
            train_loss: loss_sum / seen,
            train_acc: correct / seen,
            test_acc,
        };
        println!(
            "epoch {epoch:>2}: loss {:.4}  train acc {:6.2}%  {test_name} acc {:6.2}%  {secs:6.2} s/epoch",
            point.train_loss,
            100.0 * point.train_acc,
            100.0 * test_acc
        );
        history.push(point);
    }

    let trained = model.params()?;
    let ckpt = a.out.join("mnist_lstm.safetensors");
    save_checkpoint(&ckpt, &trained)?;
    let png = a.out.join("training.png");
    if !history.is_empty() {
        plot_training(
            &png,
            &format!("LSTM({}) on MNIST rows — {}", a.hidden, model.device_name()),
            &history,
        )?;
    }
    println!(
        "wrote {} (PyTorch names: lstm.*, fc.*) and {}",
        ckpt.display(),
        png.display()
    );
    compare_devices(a, model.as_ref(), &trained, &test)
}

/// The bundled (or given) digits, split into train and test (or validation).
fn load(a: &Args) -> Result<(Mnist, Mnist, &'static str)> {
    let dir = a
        .data
        .clone()
        .unwrap_or_else(lstm_wgpu::data::bundled_mnist_dir);
    let pick = |stem: &str| {
        let gz = dir.join(format!("{stem}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(stem)
        }
    };
    let all = load_mnist(pick("images-idx3-ubyte"), pick("labels-idx1-ubyte"))?;
    let (train, test) = all.split(a.train_size)?;
    if a.validation == 0 {
        return Ok((train, test, "test"));
    }
    let keep = train
        .len()
        .checked_sub(a.validation)
        .filter(|&k| k > 0)
        .ok_or_else(|| LstmError::value("--validation", "must be smaller than the training set"))?;
    let (train, val) = train.split(keep)?;
    Ok((train, val, "validation"))
}

fn backend(a: &Args, params: &ClassifierParams, cfg: TrainConfig) -> Result<Box<dyn Classifier>> {
    let gpu = match a.device.as_str() {
        "cpu" => None,
        "gpu" => Some(GpuContext::new()?),
        "auto" => match GpuContext::new() {
            Ok(c) if c.is_software() => {
                println!("only a software GPU adapter was found ({}); the CPU path is faster on this machine, so it trains there (--device gpu forces the adapter)", c.describe());
                None
            }
            Ok(c) => Some(c),
            Err(e) => {
                println!("no GPU adapter ({e}); training on the CPU path instead");
                None
            }
        },
        other => {
            return Err(LstmError::Config(format!(
                "--device must be auto, gpu or cpu, got {other:?}"
            )))
        }
    };
    Ok(match gpu {
        Some(ctx) => Box::new(GpuClassifier::new(Arc::new(ctx), params, cfg)?),
        None => Box::new(CpuClassifier::new(params.clone(), cfg)?),
    })
}

fn lr_at(a: &Args, step: usize, total: usize) -> f32 {
    match a.schedule.as_str() {
        "cosine" => {
            let f = step as f32 / total as f32;
            a.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f32::consts::PI * f).cos()))
        }
        _ => a.lr,
    }
}

/// Images `idx` as a batch-first `[B, 28, 28]` input and their labels.
fn gather(d: &Mnist, idx: &[usize]) -> (Array3<f32>, Vec<usize>) {
    (
        d.images.select(Axis(0), idx),
        idx.iter().map(|&i| d.labels[i] as usize).collect(),
    )
}

fn accuracy(model: &dyn Classifier, d: &Mnist) -> Result<f64> {
    let mut correct = 0.0;
    let all: Vec<usize> = (0..d.len()).collect();
    for idx in all.chunks(500) {
        let (x, y) = gather(d, idx);
        correct += model
            .evaluate(&Batch {
                x: x.view(),
                targets: &y,
                seq_lens: None,
            })?
            .correct as f64;
    }
    Ok(correct / d.len() as f64)
}

/// The trained model on the other device: max |logits difference| on one test batch.
fn compare_devices(
    a: &Args,
    model: &dyn Classifier,
    trained: &ClassifierParams,
    test: &Mnist,
) -> Result<()> {
    let idx: Vec<usize> = (0..a.batch.min(test.len())).collect();
    let (x, _) = gather(test, &idx);
    let cfg = TrainConfig::default();
    let other: Box<dyn Classifier> = if model.device_name().starts_with("GPU") {
        Box::new(CpuClassifier::new(trained.clone(), cfg)?)
    } else {
        match GpuContext::new() {
            Ok(ctx) => Box::new(GpuClassifier::new(Arc::new(ctx), trained, cfg)?),
            Err(_) => {
                println!("GPU vs CPU: no GPU adapter to compare with");
                return Ok(());
            }
        }
    };
    let (p, q) = (model.logits(x.view(), None)?, other.logits(x.view(), None)?);
    let diff = p
        .iter()
        .zip(&q)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0f32, f32::max);
    println!(
        "GPU vs CPU on one test batch of {}: max |logits difference| = {diff:.2e}",
        idx.len()
    );
    Ok(())
}

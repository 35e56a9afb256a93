//! `lstm-wgpu train` (the default command): the seed article's MNIST model done right —
//! each image row is one time step (T = 28, I = 28), LSTM(256) → Dense(10), softmax
//! cross-entropy, Adam, batch 128 — on the best GPU adapter, or the CPU path. The loop
//! is the library's `train::fit`; this file adds progress bars, the checkpoint and the plot.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::data::{load_mnist, Mnist};
use lstm_wgpu::plot::{plot_training, EpochPoint};
use lstm_wgpu::train::fit::EpochStats;
use lstm_wgpu::train::{
    fit_from, save_checkpoint, Classifier, ClassifierParams, Dataset, Device, FitConfig,
    FitObserver, History, Init, LrSchedule, TrainConfig, TrainingState,
};

use super::resume;
use lstm_wgpu::{GpuContext, LstmConfig, LstmError, Result};

/// Where to train.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU, else the CPU path.
    Auto,
    /// Any adapter, software ones too.
    Gpu,
    /// The CPU path.
    Cpu,
}

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct Args {
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch: usize,
    #[arg(long, default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub hidden: usize,
    /// Peak learning rate (Adam). 8e-3 with the cosine schedule was best on a validation
    /// split (see BENCHMARKS.md); PyTorch's and Keras's examples use a constant 1e-3.
    #[arg(long, default_value_t = 8e-3)]
    pub lr: f32,
    /// Cosine decays to 5% of --lr over the run.
    #[arg(long, value_enum, default_value_t = LrSchedule::Cosine)]
    pub schedule: LrSchedule,
    /// Clip gradients to this global norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// L2 penalty added to the gradient (torch.optim's weight_decay).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Added to the forget gate's bias at initialisation.
    #[arg(long, default_value_t = 1.0)]
    pub forget_bias: f32,
    /// Keras (Glorot + orthogonal) or torch (uniform ±1/√H).
    #[arg(long, value_enum, default_value_t = Init::Keras)]
    pub init: Init,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
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
    /// Continue the run saved in this folder (its train_state.safetensors, written after
    /// every epoch) with that run's settings; the other options are ignored.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

pub fn run(given: &Args) -> Result<()> {
    let (mut a, resumed) = match &given.resume {
        Some(dir) => {
            let (a, state) = resume::load(dir)?;
            (a, Some(state))
        }
        None => (given.clone(), None),
    };
    let (train, test, test_name) = load(&a)?;
    println!(
        "data: {} training and {} {test_name} digits (28 rows of 28 pixels each)",
        train.len(),
        test.len()
    );
    let cfg = TrainConfig {
        lr: a.lr,
        clip_norm: (a.clip > 0.0).then_some(a.clip),
        weight_decay: a.weight_decay,
        ..Default::default()
    };
    let device = device(a.device)?;
    // The state records where the run ran, so a resume runs there too (not `auto` again).
    a.device = match device {
        Device::Cpu => DeviceChoice::Cpu,
        Device::Gpu(_) => DeviceChoice::Gpu,
    };
    let (mut model, done) = start(&a, &device, cfg, resumed)?;
    println!("model: LSTM({}) → Dense(10), Adam lr {} ({:?} schedule), batch {}, clip {}, {:?} init, forget bias {}", a.hidden, a.lr, a.schedule, a.batch, a.clip, a.init, a.forget_bias);
    println!("device: {}", model.device_name());
    std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
    if given.resume.is_none() {
        // A new run in this folder: an older run's state must not be resumed by mistake.
        let _ = std::fs::remove_file(a.out.join(resume::STATE_FILE));
    }

    let fit_cfg = FitConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        schedule: a.schedule,
        seed: a.seed,
    };
    let mut bars = Bars {
        bar: None,
        eval_name: test_name,
        args: &a,
    };
    let history = fit_from(model.as_mut(), &train, &test, &fit_cfg, done, &mut bars)
        .inspect_err(|_| bars.explain_stop())?;
    if let Some(bar) = bars.bar.take() {
        bar.abandon();
    }
    // Written after every epoch already; again here for a run of zero epochs.
    let state = TrainingState::capture(model.as_ref(), &history, resume::notes(&a))?;
    let ckpt = a.out.join(CHECKPOINT_FILE);
    save_checkpoint(&ckpt, &state.params)?;
    state.save(&a.out.join(resume::STATE_FILE))?;
    let trained = state.params;
    let png = a.out.join("training.png");
    let points: Vec<EpochPoint> = history.epochs.iter().map(point).collect();
    if !points.is_empty() {
        let title = format!("LSTM({}) on MNIST rows — {}", a.hidden, model.device_name());
        plot_training(&png, &title, &points)?;
    }
    println!(
        "wrote {} (PyTorch names: lstm.*, fc.*), {} and {}",
        ckpt.display(),
        a.out.join(resume::STATE_FILE).display(),
        png.display()
    );
    compare_devices(&a, model.as_ref(), &trained, &test)
}

/// A fresh model, or the resumed one, and the epochs already done.
fn start(
    a: &Args,
    device: &Device,
    cfg: TrainConfig,
    resumed: Option<TrainingState>,
) -> Result<(Box<dyn Classifier>, History)> {
    match resumed {
        Some(state) => {
            let n = state.history.epochs.len();
            let (out, epochs) = (a.out.display(), a.epochs);
            println!("resuming from {out} after epoch {n} of {epochs}");
            Ok((state.restore(device, cfg)?, state.history))
        }
        None => {
            let lstm = LstmConfig::new(28, a.hidden).batch_first(true);
            let params = ClassifierParams::init_with(a.init, &lstm, 10, a.forget_bias, a.seed)?;
            Ok((device.classifier(&params, cfg)?, History::default()))
        }
    }
}

/// The trained model's file name inside `--out`.
const CHECKPOINT_FILE: &str = "mnist_lstm.safetensors";

fn point(e: &EpochStats) -> EpochPoint {
    EpochPoint {
        epoch: e.epoch,
        train_loss: e.train_loss,
        train_acc: e.train_acc,
        test_acc: e.eval_acc,
    }
}

/// A progress bar per epoch, a line per finished epoch, and after each epoch the
/// checkpoint and the training state (both atomic).
struct Bars<'a> {
    bar: Option<ProgressBar>,
    eval_name: &'static str,
    args: &'a Args,
}

impl Bars<'_> {
    /// Says what is left when training stops with an error.
    fn explain_stop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        let state = self.args.out.join(resume::STATE_FILE);
        if state.exists() {
            eprintln!(
                "training stopped; the last good state is {} (`lstm-wgpu train --resume {}` continues from it)",
                state.display(),
                self.args.out.display()
            );
        }
    }
}

impl FitObserver for Bars<'_> {
    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        let style = ProgressStyle::with_template(
            "epoch {prefix:>2} [{bar:30}] {pos}/{len} batches ({elapsed}, {per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::new(steps as u64).with_style(style);
        bar.set_prefix(epoch.to_string());
        self.bar = Some(bar);
    }

    fn step_end(&mut self, _step: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn epoch_end(&mut self, e: &EpochStats) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!(
            "epoch {:>2}: loss {:.4}  train acc {:6.2}%  {} acc {:6.2}%  {:6.2} s/epoch",
            e.epoch,
            e.train_loss,
            100.0 * e.train_acc,
            self.eval_name,
            100.0 * e.eval_acc,
            e.seconds
        );
    }

    fn after_epoch(&mut self, model: &dyn Classifier, history: &History) -> Result<()> {
        let state = TrainingState::capture(model, history, resume::notes(self.args))?;
        save_checkpoint(&self.args.out.join(CHECKPOINT_FILE), &state.params)?;
        state.save(&self.args.out.join(resume::STATE_FILE))
    }
}

/// The bundled (or given) digits, split into train and test (or validation).
fn load(a: &Args) -> Result<(Dataset, Dataset, &'static str)> {
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
    let all: Mnist = load_mnist(pick("images-idx3-ubyte"), pick("labels-idx1-ubyte"))?;
    let (train, test) = all.split(a.train_size)?;
    if a.validation == 0 {
        return Ok(((&train).into(), (&test).into(), "test"));
    }
    let keep = train
        .len()
        .checked_sub(a.validation)
        .filter(|&k| k > 0)
        .ok_or_else(|| LstmError::value("--validation", "must be smaller than the training set"))?;
    let (train, val) = train.split(keep)?;
    Ok(((&train).into(), (&val).into(), "validation"))
}

fn device(choice: DeviceChoice) -> Result<Device> {
    let gpu = match choice {
        DeviceChoice::Cpu => None,
        DeviceChoice::Gpu => Some(GpuContext::new()?),
        DeviceChoice::Auto => match GpuContext::new() {
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
    };
    Ok(gpu.map_or(Device::Cpu, |c| Device::Gpu(Arc::new(c))))
}

/// The trained model on the other device: max |logits difference| on one test batch.
fn compare_devices(
    a: &Args,
    model: &dyn Classifier,
    trained: &ClassifierParams,
    test: &Dataset,
) -> Result<()> {
    let idx: Vec<usize> = (0..a.batch.min(test.len())).collect();
    let (x, _) = test.gather(&idx)?;
    let other = if model.device_name().starts_with("GPU") {
        Device::Cpu
    } else {
        match GpuContext::new() {
            Ok(ctx) => Device::Gpu(Arc::new(ctx)),
            Err(_) => {
                println!("GPU vs CPU: no GPU adapter to compare with");
                return Ok(());
            }
        }
    };
    let other = other.classifier(trained, TrainConfig::default())?;
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

//! `lstm-wgpu generate`: trains (or loads) the class-conditional row-by-row generator
//! of `lstm_wgpu::apps::generate` on the bundled training digits, draws digits of every
//! class into a PNG grid, and with `--complete` completes held-out half digits. The
//! model, training, sampling and checks are library calls; this file adds the progress
//! bar, the files and the printing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use lstm_wgpu::apps::generate::{
    self as gen, Digits, GenDevice, GenEpoch, GenObserver, GenTrainConfig, SampleOptions,
};
use lstm_wgpu::apps::render::{completion_grid, digit_grid, save_png};
use lstm_wgpu::data::{load_bundled_mnist, Mnist, BUNDLED_TRAIN_LEN};
use lstm_wgpu::train::{load_checkpoint, save_checkpoint, ClassifierParams, LrSchedule};
use lstm_wgpu::{GpuContext, LstmError, Result};

/// Where the LSTM of the generator trains.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenDeviceChoice {
    /// The CPU path (faster than a software adapter; the default).
    Cpu,
    /// The GPU adapter (forward and BPTT on the GPU; head and Adam on the host).
    Gpu,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Load a generator checkpoint instead of training one.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    #[arg(long, default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub hidden: usize,
    #[arg(long, default_value_t = GenTrainConfig::default().epochs)]
    pub epochs: usize,
    #[arg(long, default_value_t = GenTrainConfig::default().batch, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch: usize,
    /// Peak learning rate (Adam, cosine schedule).
    #[arg(long, default_value_t = GenTrainConfig::default().lr)]
    pub lr: f32,
    /// Seeds the initialisation, the shuffling and the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = GenDeviceChoice::Cpu)]
    pub device: GenDeviceChoice,
    /// Digits drawn per class (one grid row per class).
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub per_class: usize,
    /// Scale of the noise in each fed-back row (0: feed the probabilities themselves).
    #[arg(long, default_value_t = SampleOptions::default().temperature)]
    pub temperature: f32,
    /// Feed back binary Bernoulli samples (temperature: σ(z/τ)) instead of relaxed ones.
    #[arg(long)]
    pub binary: bool,
    /// Also complete held-out digits from their top half and score the completions.
    #[arg(long)]
    pub complete: bool,
    /// Held-out digits shown in the completion PNG.
    #[arg(long, default_value_t = 20)]
    pub complete_show: usize,
    /// Have this classifier label 100 generated digits per class and print the agreement.
    #[arg(long)]
    pub check: Option<PathBuf>,
    /// Train on the grey-level rows as they are (default: each input row binarised afresh per batch).
    #[arg(long)]
    pub grey_inputs: bool,
    /// Where the checkpoint and the PNGs go.
    #[arg(long, default_value = "out/generate")]
    pub out: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
    let (train, test) = load_bundled_mnist()?.split(BUNDLED_TRAIN_LEN)?;
    let params = match &a.weights {
        Some(path) => {
            let p = load_checkpoint(path, None)?;
            println!(
                "loaded {} (LSTM({}) → Dense(28))",
                path.display(),
                p.lstm.config.hidden_size
            );
            p
        }
        None => train_and_save(a, &train, &test)?,
    };
    let opts = SampleOptions {
        temperature: a.temperature,
        binary: a.binary,
        seed: a.seed,
    };
    let classes: Vec<usize> = (0..10)
        .flat_map(|c| std::iter::repeat_n(c, a.per_class))
        .collect();
    let drawn = gen::sample(&params, &classes, &opts)?;
    let grid = a.out.join("samples.png");
    save_png(&digit_grid(drawn.images.view(), a.per_class)?, &grid)?;
    println!(
        "wrote {} ({} digits per class, one row per class 0–9; temperature {}{})",
        grid.display(),
        a.per_class,
        a.temperature,
        if a.binary { ", binary" } else { "" }
    );
    if a.complete {
        complete(a, &params, &train, &test)?;
    }
    if let Some(path) = &a.check {
        check(&params, path, &opts)?;
    }
    Ok(())
}

fn digits(m: &Mnist) -> (ndarray::ArrayView3<'_, f32>, Vec<usize>) {
    (
        m.images.view(),
        m.labels.iter().map(|&l| l as usize).collect(),
    )
}

fn train_and_save(a: &Args, train: &Mnist, test: &Mnist) -> Result<ClassifierParams> {
    let device = match a.device {
        GenDeviceChoice::Cpu => GenDevice::Cpu,
        GenDeviceChoice::Gpu => GenDevice::Gpu(Arc::new(GpuContext::new()?)),
    };
    let cfg = GenTrainConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        schedule: LrSchedule::Cosine,
        clip: Some(1.0),
        seed: a.seed,
        binarize_inputs: !a.grey_inputs,
    };
    println!(
        "generator: LSTM({}) over rows, input = previous row + one-hot class (38), Dense(28) at every step, \
         per-pixel sigmoid cross-entropy; Adam lr {} (cosine), batch {}, {} epochs on {}",
        a.hidden, a.lr, a.batch, a.epochs, device.name()
    );
    let mut params = gen::init_generator(a.hidden, a.seed)?;
    params.dense.bias = gen::model::column_mean_bias(train.images.view());
    let (train_x, train_y) = digits(train);
    let eval_n = test.len().min(500);
    let (test_x, test_y) = digits(test);
    let eval = Digits {
        images: test_x.slice(ndarray::s![..eval_n, .., ..]),
        labels: &test_y[..eval_n],
    };
    let start = Instant::now();
    let mut bars = Bars { bar: None };
    let train_d = Digits {
        images: train_x,
        labels: &train_y,
    };
    let (params, _) = gen::train_generator(params, train_d, Some(eval), &cfg, device, &mut bars)?;
    println!("trained in {:.1} s", start.elapsed().as_secs_f64());
    let ckpt = a.out.join("generator.safetensors");
    save_checkpoint(&ckpt, &params)?;
    println!("wrote {} (PyTorch names: lstm.*, fc.*)", ckpt.display());
    Ok(params)
}

/// Completes the top halves of held-out digits; prints the cross-entropy figures.
fn complete(a: &Args, params: &ClassifierParams, train: &Mnist, test: &Mnist) -> Result<()> {
    let mean = gen::mean_image(train.images.view())?;
    let opts = SampleOptions {
        temperature: 0.0,
        binary: false,
        seed: a.seed,
    };
    let c = gen::completion_bce(params, test.images.view(), mean.view(), 14, &opts)?;
    let right = c
        .classes
        .iter()
        .zip(&test.labels)
        .filter(|(p, &l)| **p == l as usize)
        .count();
    println!(
        "completion of the bottom half from the top 14 rows, {} held-out digits (class inferred from the top half: {:.1}% right):\n  \
         mean per-pixel cross-entropy {:.4} nats (model)  vs  {:.4} (mean training digit's bottom half)",
        test.len(),
        100.0 * right as f64 / test.len().max(1) as f64,
        c.model_bce,
        c.baseline_bce
    );
    let show = a.complete_show.clamp(1, test.len());
    let img = completion_grid(
        test.images.slice(ndarray::s![..show, .., ..]),
        c.drawn.probs.slice(ndarray::s![..show, .., ..]),
        14,
        5,
    )?;
    let path = a.out.join("completion.png");
    save_png(&img, &path)?;
    println!(
        "wrote {} (original | completion; generated rows in amber)",
        path.display()
    );
    Ok(())
}

/// The classifier-agreement figure on 100 digits per class.
fn check(params: &ClassifierParams, classifier: &Path, opts: &SampleOptions) -> Result<()> {
    let clf = load_checkpoint(classifier, None)?;
    let (agree, _) = gen::agreement(params, &clf, 100, opts)?;
    println!(
        "classifier {} on 100 generated digits per class:",
        classifier.display()
    );
    for (c, &(hit, all)) in agree.per_class.iter().enumerate() {
        println!(
            "  class {c}: {:5.1}% labelled {c}",
            100.0 * hit as f64 / all as f64
        );
    }
    println!(
        "  overall: {:.1}% (lowest class {:.1}%)",
        100.0 * agree.overall(),
        100.0 * agree.worst()
    );
    Ok(())
}

/// A progress bar per epoch and a line per finished epoch.
struct Bars {
    bar: Option<ProgressBar>,
}

impl GenObserver for Bars {
    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        self.bar = Some(super::epoch_bar(epoch, steps));
    }

    fn step_end(&mut self, _step: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn epoch_end(&mut self, e: &GenEpoch) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!(
            "epoch {:>2}: train cross-entropy {:.4}  held-out {:.4} nats/pixel  {:6.2} s/epoch",
            e.epoch, e.train_loss, e.eval_loss, e.seconds
        );
    }
}

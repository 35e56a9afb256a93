//! `lstm-wgpu train` (the default command): the seed article's MNIST model done right —
//! each image row is one time step (T = 28, I = 28), LSTM(256) → Dense(10), softmax
//! cross-entropy, Adam, batch 128 — on the best GPU adapter, or the CPU path. The loop
//! is the library's `train::fit`; this file adds progress bars, the checkpoint and the plot.

use std::path::PathBuf;

use indicatif::ProgressBar;
use lstm_wgpu::data::{load_mnist, Mnist};
use lstm_wgpu::interop::format::CellKind;
use lstm_wgpu::plot::{plot_training, EpochPoint};
use lstm_wgpu::train::fit::EpochStats;
use lstm_wgpu::train::{
    fit_from, save_checkpoint, Classifier, ClassifierParams, Dataset, Device, FitConfig,
    FitObserver, History, Init, LrSchedule, TrainConfig, TrainingState,
};

use super::devices::compare_devices;
pub(crate) use super::devices::{device, DeviceChoice};
use super::resume;
use lstm_wgpu::{LstmConfig, LstmError, Result};

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
    /// every epoch) with that run's settings; the other options are ignored, except
    /// --distributed and --adapter-per-rank.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Data-parallel training over MPI: `mpirun -np N lstm-wgpu train --distributed …`;
    /// each rank trains on its shard of every batch, gradients are summed over the ranks
    /// (needs a build with the `mpi` feature).
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed: rank r uses GPU adapter r mod (number of adapters), so that a
    /// host with several GPUs uses them all.
    #[arg(long, requires = "distributed")]
    pub adapter_per_rank: bool,
    /// The recurrent cell: LSTM(hidden) or GRU(hidden) (a GRU trains on the CPU path).
    #[arg(long, value_enum, default_value_t = CellKind::Lstm)]
    pub cell: CellKind,
}

pub fn run(given: &Args) -> Result<()> {
    let mut a = match &given.resume {
        Some(dir) => {
            let mut a = resume::load_args(dir)?;
            // How to run (not what to compute) may change on resuming.
            a.distributed |= given.distributed;
            a.adapter_per_rank |= given.adapter_per_rank;
            a
        }
        None => given.clone(),
    };
    let resuming = given.resume.is_some();
    if a.cell == CellKind::Gru {
        return super::train_gru::run(&a, resuming);
    }
    let resumed = match resuming {
        true => Some(resume::load_state(&a.out)?),
        false => None,
    };
    if a.distributed {
        return distributed(&a, resumed);
    }
    let device = device(a.device, None, true)?;
    // The state records where the run ran, so a resume runs there too (not `auto` again).
    a.device = match device {
        Device::Cpu => DeviceChoice::Cpu,
        Device::Gpu(_) => DeviceChoice::Gpu,
    };
    let fresh = resumed.is_none();
    let p = Prepared::new(&a, resumed, &device, true)?;
    if fresh {
        // A new run in this folder: an older run's state must not be resumed by mistake.
        let _ = std::fs::remove_file(a.out.join(resume::STATE_FILE));
    }
    let Prepared {
        mut model,
        train,
        test,
        test_name,
        fit_cfg,
        done,
    } = p;
    let mut bars = Bars::new(&a, test_name);
    let history = fit_from(model.as_mut(), &train, &test, &fit_cfg, done, &mut bars)
        .inspect_err(|_| bars.explain_stop())?;
    bars.close();
    finish(&a, model.as_ref(), &model.device_name(), &history, &test)
}

#[cfg(feature = "mpi")]
fn distributed(a: &Args, resumed: Option<TrainingState>) -> Result<()> {
    super::distributed::run(a, resumed)
}

#[cfg(not(feature = "mpi"))]
fn distributed(_: &Args, _: Option<TrainingState>) -> Result<()> {
    Err(LstmError::Config(
        "--distributed needs a build with the `mpi` feature (cargo build --release --features mpi, with an MPI library installed: libopenmpi-dev openmpi-bin libclang-dev), started by mpirun".into(),
    ))
}

/// A run ready to train: its data, model and loop settings.
pub(crate) struct Prepared {
    pub model: Box<dyn Classifier>,
    pub train: Dataset,
    pub test: Dataset,
    pub test_name: &'static str,
    pub fit_cfg: FitConfig,
    /// The finished epochs of a resumed run.
    pub done: History,
}

impl Prepared {
    /// Loads the data and builds (or restores) the model on `device`; `say`: print what
    /// is happening and create the output folder (the process that writes).
    pub fn new(
        a: &Args,
        resumed: Option<TrainingState>,
        device: &Device,
        say: bool,
    ) -> Result<Prepared> {
        let (train, test, test_name) = load(a)?;
        let cfg = TrainConfig {
            lr: a.lr,
            clip_norm: (a.clip > 0.0).then_some(a.clip),
            weight_decay: a.weight_decay,
            ..Default::default()
        };
        let (model, done) = match resumed {
            Some(state) => {
                if say {
                    let n = state.history.epochs.len();
                    let out = a.out.display();
                    println!("resuming from {out} after epoch {n} of {}", a.epochs);
                }
                (state.restore(device, cfg)?, state.history)
            }
            None => {
                let lstm = LstmConfig::new(28, a.hidden).batch_first(true);
                let params = ClassifierParams::init_with(a.init, &lstm, 10, a.forget_bias, a.seed)?;
                (device.classifier(&params, cfg)?, History::default())
            }
        };
        if say {
            println!(
                "data: {} training and {} {test_name} digits (28 rows of 28 pixels each)",
                train.len(),
                test.len()
            );
            println!("model: LSTM({}) → Dense(10), Adam lr {} ({:?} schedule), batch {}, clip {}, {:?} init, forget bias {}", a.hidden, a.lr, a.schedule, a.batch, a.clip, a.init, a.forget_bias);
            println!("device: {}", model.device_name());
            std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
        }
        let fit_cfg = FitConfig {
            epochs: a.epochs,
            batch: a.batch,
            lr: a.lr,
            schedule: a.schedule,
            seed: a.seed,
        };
        Ok(Prepared {
            model,
            train,
            test,
            test_name,
            fit_cfg,
            done,
        })
    }
}

/// After training: the plot, what was written, and the model on the other device.
pub(crate) fn finish(
    a: &Args,
    model: &dyn Classifier,
    device_name: &str,
    history: &History,
    test: &Dataset,
) -> Result<()> {
    // Written after every epoch already; again here for a run of zero epochs.
    let state = TrainingState::capture(model, history, resume::notes(a))?;
    let ckpt = a.out.join(CHECKPOINT_FILE);
    save_checkpoint(&ckpt, &state.params)?;
    state.save(&a.out.join(resume::STATE_FILE))?;
    let trained = state.params;
    let png = a.out.join("training.png");
    let points: Vec<EpochPoint> = history.epochs.iter().map(point).collect();
    if !points.is_empty() {
        let title = format!("LSTM({}) on MNIST rows — {device_name}", a.hidden);
        plot_training(&png, &title, &points)?;
    }
    println!(
        "wrote {} (PyTorch names: lstm.*, fc.*), {} and {}",
        ckpt.display(),
        a.out.join(resume::STATE_FILE).display(),
        png.display()
    );
    compare_devices(a, model, &trained, test)
}

/// The trained model's file name inside `--out`.
const CHECKPOINT_FILE: &str = "mnist_lstm.safetensors";

pub(crate) fn point(e: &EpochStats) -> EpochPoint {
    EpochPoint {
        epoch: e.epoch,
        train_loss: e.train_loss,
        train_acc: e.train_acc,
        test_acc: e.eval_acc,
    }
}

/// A progress bar per epoch, a line per finished epoch, and after each epoch the
/// checkpoint and the training state (both atomic).
pub(crate) struct Bars<'a> {
    bar: Option<ProgressBar>,
    eval_name: &'static str,
    args: &'a Args,
    /// Writes the checkpoint and the training state after each epoch.
    save_state: SaveState,
}

/// Writes a run's checkpoint and training state after an epoch.
pub(crate) type SaveState = fn(&Args, &dyn Classifier, &History) -> Result<()>;

impl<'a> Bars<'a> {
    pub fn new(args: &'a Args, eval_name: &'static str) -> Self {
        Self::saving(args, eval_name, save_lstm_state)
    }

    /// Bars that save the run with `save_state` after every epoch (GRU runs).
    pub fn saving(args: &'a Args, eval_name: &'static str, save_state: SaveState) -> Self {
        Bars {
            bar: None,
            eval_name,
            args,
            save_state,
        }
    }

    /// Leaves the last bar as it is.
    pub fn close(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }

    /// Says what is left when training stops with an error.
    pub fn explain_stop(&mut self) {
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
        self.bar = Some(super::epoch_bar(epoch, steps));
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
        (self.save_state)(self.args, model, history)
    }
}

fn save_lstm_state(a: &Args, model: &dyn Classifier, history: &History) -> Result<()> {
    let state = TrainingState::capture(model, history, resume::notes(a))?;
    save_checkpoint(&a.out.join(CHECKPOINT_FILE), &state.params)?;
    state.save(&a.out.join(resume::STATE_FILE))
}

/// The bundled (or given) digits, split into train and test (or validation).
pub(crate) fn load(a: &Args) -> Result<(Dataset, Dataset, &'static str)> {
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

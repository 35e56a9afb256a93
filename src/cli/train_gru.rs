//! `lstm-wgpu train --cell gru`: the seed's MNIST classifier with a GRU(hidden) in
//! place of the LSTM — the same data, head, loss, Adam, schedule, progress bars,
//! devices and `--resume` — leaving `mnist_gru.safetensors` (`gru.*` under `nn.GRU`'s
//! names, `fc.*`), the training state and `training.png`. The model is the same on
//! either device (`GpuClassifier::new_gru` trains what `GruClassifier` trains).

use lstm_wgpu::interop::tensors::TensorMap;
use lstm_wgpu::plot::{plot_training, EpochPoint};
use lstm_wgpu::train::{
    fit_from, Classifier, Device, FitConfig, GruClassifierParams, History, TrainConfig,
    TrainingState,
};
use lstm_wgpu::{GruConfig, LstmError, Result};

use super::devices::{device, DeviceChoice};
use super::resume;
use super::train::{load, point, Args, Bars};

/// The trained model's file name inside `--out`.
const CHECKPOINT_FILE: &str = "mnist_gru.safetensors";

/// A GRU run's training state.
type GruState = TrainingState<GruClassifierParams>;

/// A fresh run, or (`resuming`) the run saved in `a.out` continued.
pub fn run(a: &Args, resuming: bool) -> Result<()> {
    if a.distributed {
        return Err(LstmError::Config(
            "train --cell gru does not support --distributed".into(),
        ));
    }
    let device = device(a.device, None, true)?;
    let mut a = a.clone();
    // The state records where the run ran, so a resume runs there too (not `auto` again).
    a.device = match device {
        Device::Cpu => DeviceChoice::Cpu,
        Device::Gpu(_) => DeviceChoice::Gpu,
    };
    let (train, test, test_name) = load(&a)?;
    let cfg = TrainConfig {
        lr: a.lr,
        clip_norm: (a.clip > 0.0).then_some(a.clip),
        weight_decay: a.weight_decay,
        ..Default::default()
    };
    let (mut model, done) = if resuming {
        let state: GruState = resume::load_state(&a.out)?;
        let n = state.history.epochs.len();
        println!(
            "resuming from {} after epoch {n} of {}",
            a.out.display(),
            a.epochs
        );
        (state.restore(&device, cfg)?, state.history)
    } else {
        // A new run in this folder: an older run's state must not be resumed by mistake.
        let _ = std::fs::remove_file(a.out.join(resume::STATE_FILE));
        let gru = GruConfig::new(28, a.hidden).batch_first(true);
        let params = GruClassifierParams::init(a.init, &gru, 10, a.seed)?;
        (device.gru_classifier(&params, cfg)?, History::default())
    };
    println!(
        "data: {} training and {} {test_name} digits (28 rows of 28 pixels each)",
        train.len(),
        test.len()
    );
    println!(
        "model: GRU({}) → Dense(10), Adam lr {} ({:?} schedule), batch {}, clip {}, {:?} init",
        a.hidden, a.lr, a.schedule, a.batch, a.clip, a.init
    );
    println!("device: {}", model.device_name());
    std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
    let fit_cfg = FitConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        schedule: a.schedule,
        seed: a.seed,
    };
    let mut bars = Bars::saving(&a, test_name, save_state);
    let history = fit_from(model.as_mut(), &train, &test, &fit_cfg, done, &mut bars)
        .inspect_err(|_| bars.explain_stop())?;
    bars.close();
    // Written after every epoch already; again here for a run of zero epochs.
    save_state(&a, model.as_ref(), &history)?;
    plot(&a, &model.device_name(), &history)
}

/// The trained model under PyTorch's names, and the training state (after every epoch).
fn save_state(a: &Args, model: &dyn Classifier, history: &History) -> Result<()> {
    let state = GruState::capture_as(model, history, resume::notes(a))?;
    let p = &state.params;
    let mut map = TensorMap::default();
    lstm_wgpu::train::checkpoint::put_gru_params(&mut map, "", p)?;
    let ckpt = a.out.join(CHECKPOINT_FILE);
    lstm_wgpu::train::checkpoint::write_atomic(&ckpt, &map.to_safetensors_bytes()?)?;
    state.save(&a.out.join(resume::STATE_FILE))
}

/// The training curve, and what the run left.
fn plot(a: &Args, device_name: &str, history: &History) -> Result<()> {
    let png = a.out.join("training.png");
    let points: Vec<EpochPoint> = history.epochs.iter().map(point).collect();
    if !points.is_empty() {
        let title = format!("GRU({}) on MNIST rows — {device_name}", a.hidden);
        plot_training(&png, &title, &points)?;
    }
    println!(
        "wrote {} (PyTorch names: gru.*, fc.*), {} and {}",
        a.out.join(CHECKPOINT_FILE).display(),
        a.out.join(resume::STATE_FILE).display(),
        png.display()
    );
    Ok(())
}

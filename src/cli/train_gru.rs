//! `lstm-wgpu train --cell gru`: the seed's MNIST classifier with a GRU(hidden) in
//! place of the LSTM — the same data, head, loss, Adam, schedule and progress bars —
//! on the CPU path. It leaves `mnist_gru.safetensors` (`gru.*` under `nn.GRU`'s names,
//! `fc.*`) and `training.png`; GRU runs are not resumable yet.

use lstm_wgpu::interop::{tensors::TensorMap, torch_gru};
use lstm_wgpu::plot::{plot_training, EpochPoint};
use lstm_wgpu::train::{fit, FitConfig, GruClassifier, GruClassifierParams, History, TrainConfig};
use lstm_wgpu::{GruConfig, LstmError, Result};

use super::devices::DeviceChoice;
use super::train::{load, point, Args, Bars};

/// The trained model's file name inside `--out`.
const CHECKPOINT_FILE: &str = "mnist_gru.safetensors";

pub fn run(a: &Args, resumed: bool) -> Result<()> {
    refuse_unsupported(a, resumed)?;
    let (train, test, test_name) = load(a)?;
    let cfg = TrainConfig {
        lr: a.lr,
        clip_norm: (a.clip > 0.0).then_some(a.clip),
        weight_decay: a.weight_decay,
        ..Default::default()
    };
    let gru = GruConfig::new(28, a.hidden).batch_first(true);
    let params = GruClassifierParams::init(a.init, &gru, 10, a.seed)?;
    let mut model = GruClassifier::new(params, cfg)?;
    println!(
        "data: {} training and {} {test_name} digits (28 rows of 28 pixels each)",
        train.len(),
        test.len()
    );
    println!(
        "model: GRU({}) → Dense(10), Adam lr {} ({:?} schedule), batch {}, clip {}, {:?} init",
        a.hidden, a.lr, a.schedule, a.batch, a.clip, a.init
    );
    println!("device: CPU (reference path)");
    std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
    let fit_cfg = FitConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        schedule: a.schedule,
        seed: a.seed,
    };
    let mut bars = Bars::without_state(a, test_name);
    let history = fit(&mut model, &train, &test, &fit_cfg, &mut bars)?;
    bars.close();
    save(a, model.gru_params(), &history)
}

/// What a GRU run cannot do yet, said before any work.
fn refuse_unsupported(a: &Args, resumed: bool) -> Result<()> {
    let problem = if resumed {
        Some("--resume (GRU runs save no training state yet)")
    } else if a.distributed {
        Some("--distributed")
    } else if a.device == DeviceChoice::Gpu {
        Some("--device gpu (GRU training runs on the CPU path; GpuGru runs the forward)")
    } else {
        None
    };
    match problem {
        Some(p) => Err(LstmError::Config(format!(
            "train --cell gru does not support {p}"
        ))),
        None => Ok(()),
    }
}

/// The trained model under PyTorch's names, and the training curve.
fn save(a: &Args, p: &GruClassifierParams, history: &History) -> Result<()> {
    let mut map = TensorMap::default();
    torch_gru::gru_to_tensors(&p.gru, "gru.", &mut map)?;
    map.tensors
        .insert("fc.weight".into(), p.dense.weight.clone().into_dyn());
    map.tensors
        .insert("fc.bias".into(), p.dense.bias.clone().into_dyn());
    let ckpt = a.out.join(CHECKPOINT_FILE);
    let bytes = map.to_safetensors_bytes()?;
    std::fs::write(&ckpt, bytes).map_err(|e| LstmError::io(&ckpt, e))?;
    let png = a.out.join("training.png");
    let points: Vec<EpochPoint> = history.epochs.iter().map(point).collect();
    if !points.is_empty() {
        plot_training(
            &png,
            &format!("GRU({}) on MNIST rows — CPU", a.hidden),
            &points,
        )?;
    }
    println!(
        "wrote {} (PyTorch names: gru.*, fc.*) and {}",
        ckpt.display(),
        png.display()
    );
    Ok(())
}

//! Everything a run needs to continue where it stopped: the parameters, the optimizer's
//! moments and step, the finished epochs' figures and the caller's notes (the CLI keeps
//! its command line there). One safetensors file, written atomically after every epoch;
//! resuming from it reaches the same weights as a run that never stopped (the epochs'
//! shuffles are replayed from the seed, the schedule continues from the step count).
//!
//! Layout: the parameters as a checkpoint (`lstm.*` or a GRU's `gru.*`, and `fc.*`),
//! the moments under
//! `optimizer.exp_avg.` and `optimizer.exp_avg_sq.` (torch.optim.Adam's names) in the
//! same host layout, and metadata `optimizer.step`, `history`, `note.<key>`.

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint::{put_gru_params, put_params, take_gru_params, take_params, write_atomic};
use super::classifier::{
    Classifier, ClassifierParams, Device, GruClassifierParams, OptimizerState,
};
use super::fit::{EpochStats, History};
use super::optimizer::TrainConfig;
use crate::error::{LstmError, Result};
use crate::interop::tensors::TensorMap;

const M: &str = "optimizer.exp_avg.";
const V: &str = "optimizer.exp_avg_sq.";

/// A run's state after some epochs. `P` is the model's parameter type: an LSTM
/// classifier's [`ClassifierParams`] (the default) or a GRU's [`GruClassifierParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState<P = ClassifierParams> {
    pub params: P,
    pub optimizer: OptimizerState<P>,
    /// One entry per finished epoch.
    pub history: History,
    /// The caller's own strings, stored and restored as they are.
    pub notes: BTreeMap<String, String>,
}

/// A model's parameters as a training state holds them: read from and restored into
/// a classifier, written to and read from a tensor map under a name prefix.
pub trait StateParams: Clone + Sized {
    /// The parameters and the optimizer's state of `model` (a readback on the GPU).
    fn capture(model: &dyn Classifier) -> Result<(Self, OptimizerState<Self>)>;
    /// A model on `device` with these parameters, `cfg` and the optimizer state `opt`.
    fn restore(
        &self,
        opt: &OptimizerState<Self>,
        device: &Device,
        cfg: TrainConfig,
    ) -> Result<Box<dyn Classifier>>;
    /// Adds the tensors under `prefix` to `map`.
    fn put(&self, map: &mut TensorMap, prefix: &str) -> Result<()>;
    /// Reads what [`put`](Self::put) wrote.
    fn take(map: &TensorMap, prefix: &str) -> Result<Self>;
    /// Whether `other` has these tensors' shapes.
    fn same_shape(&self, other: &Self) -> bool;
}

impl StateParams for ClassifierParams {
    fn capture(model: &dyn Classifier) -> Result<(Self, OptimizerState<Self>)> {
        Ok((model.params()?, model.optimizer_state()?))
    }
    fn restore(
        &self,
        opt: &OptimizerState,
        device: &Device,
        cfg: TrainConfig,
    ) -> Result<Box<dyn Classifier>> {
        let mut model = device.classifier(self, cfg)?;
        model.set_optimizer_state(opt)?;
        Ok(model)
    }
    fn put(&self, map: &mut TensorMap, prefix: &str) -> Result<()> {
        put_params(map, prefix, self)
    }
    fn take(map: &TensorMap, prefix: &str) -> Result<Self> {
        take_params(map, prefix)
    }
    fn same_shape(&self, other: &Self) -> bool {
        self.lstm.config == other.lstm.config
    }
}

impl StateParams for GruClassifierParams {
    fn capture(model: &dyn Classifier) -> Result<(Self, OptimizerState<Self>)> {
        Ok((model.gru_params()?, model.gru_optimizer_state()?))
    }
    fn restore(
        &self,
        opt: &OptimizerState<Self>,
        device: &Device,
        cfg: TrainConfig,
    ) -> Result<Box<dyn Classifier>> {
        let mut model = device.gru_classifier(self, cfg)?;
        model.set_gru_optimizer_state(opt)?;
        Ok(model)
    }
    fn put(&self, map: &mut TensorMap, prefix: &str) -> Result<()> {
        put_gru_params(map, prefix, self)
    }
    fn take(map: &TensorMap, prefix: &str) -> Result<Self> {
        take_gru_params(map, prefix)
    }
    fn same_shape(&self, other: &Self) -> bool {
        self.gru.config == other.gru.config
    }
}

impl TrainingState {
    /// The state of the LSTM classifier `model` after the epochs in `history`.
    pub fn capture(
        model: &dyn Classifier,
        history: &History,
        notes: BTreeMap<String, String>,
    ) -> Result<Self> {
        Self::capture_as(model, history, notes)
    }

    /// Reads an LSTM classifier's state that [`TrainingState::save`] wrote.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_as(path)
    }
}

impl<P: StateParams> TrainingState<P> {
    /// The state of `model` after the epochs in `history` (a readback on the GPU).
    pub fn capture_as(
        model: &dyn Classifier,
        history: &History,
        notes: BTreeMap<String, String>,
    ) -> Result<Self> {
        let (params, optimizer) = P::capture(model)?;
        Ok(TrainingState {
            params,
            optimizer,
            history: history.clone(),
            notes,
        })
    }

    /// A model on `device` that continues this run with the settings `cfg`.
    pub fn restore(&self, device: &Device, cfg: TrainConfig) -> Result<Box<dyn Classifier>> {
        self.params.restore(&self.optimizer, device, cfg)
    }

    /// Writes the state to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = TensorMap::default();
        self.params.put(&mut map, "")?;
        self.optimizer.m.put(&mut map, M)?;
        self.optimizer.v.put(&mut map, V)?;
        let meta = &mut map.metadata;
        meta.insert("optimizer.step".into(), self.optimizer.step.to_string());
        meta.insert("history".into(), history_to_string(&self.history));
        for (k, v) in &self.notes {
            meta.insert(format!("note.{k}"), v.clone());
        }
        write_atomic(path, &map.to_safetensors_bytes()?)
    }

    /// Reads a state that [`TrainingState::save`] wrote, of a model with parameters `P`.
    pub fn load_as(path: &Path) -> Result<Self> {
        let map = TensorMap::read_safetensors(path)?;
        let meta = |key: &str| {
            map.metadata.get(key).ok_or_else(|| LstmError::Format {
                what: format!("training state {}", path.display()),
                reason: format!("metadata {key:?} is missing"),
            })
        };
        let step = meta("optimizer.step")?
            .parse::<u64>()
            .map_err(|e| bad(path, format!("optimizer.step: {e}")))?;
        let history = history_from_str(meta("history")?).map_err(|r| bad(path, r))?;
        let params = P::take(&map, "")?;
        let optimizer = OptimizerState {
            step,
            m: P::take(&map, M)?,
            v: P::take(&map, V)?,
        };
        if !optimizer.m.same_shape(&params) || !optimizer.v.same_shape(&params) {
            return Err(bad(
                path,
                "the moments are shaped unlike the parameters".into(),
            ));
        }
        Ok(TrainingState {
            params,
            optimizer,
            history,
            notes: notes_of(&map),
        })
    }
}

/// The caller's notes of the state at `path`, whatever its model (the CLI reads its
/// stored command line there before it knows which model to load).
pub fn read_notes(path: &Path) -> Result<BTreeMap<String, String>> {
    Ok(notes_of(&TensorMap::read_safetensors(path)?))
}

fn notes_of(map: &TensorMap) -> BTreeMap<String, String> {
    map.metadata
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("note.")?.to_string(), v.clone())))
        .collect()
}

fn bad(path: &Path, reason: String) -> LstmError {
    LstmError::Format {
        what: format!("training state {}", path.display()),
        reason,
    }
}

/// One line per epoch: `epoch loss train_acc eval_acc seconds` (shortest round-trip floats).
fn history_to_string(h: &History) -> String {
    h.epochs
        .iter()
        .map(|e| {
            let (l, a, v, s) = (e.train_loss, e.train_acc, e.eval_acc, e.seconds);
            format!("{} {l} {a} {v} {s}", e.epoch)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn history_from_str(s: &str) -> std::result::Result<History, String> {
    let mut epochs = Vec::new();
    for (i, line) in s.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |k: usize| -> std::result::Result<f64, String> {
            let v = f
                .get(k)
                .ok_or(format!("history line {}: too few fields", i + 1))?;
            v.parse::<f64>()
                .map_err(|e| format!("history line {}: {e}", i + 1))
        };
        let epoch = f
            .first()
            .and_then(|e| e.parse::<usize>().ok())
            .filter(|&e| e == i + 1)
            .ok_or(format!("history line {}: epoch should be {}", i + 1, i + 1))?;
        epochs.push(EpochStats {
            epoch,
            train_loss: num(1)?,
            train_acc: num(2)?,
            eval_acc: num(3)?,
            seconds: num(4)?,
        });
    }
    Ok(History { epochs })
}

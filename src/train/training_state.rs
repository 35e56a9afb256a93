//! Everything a run needs to continue where it stopped: the parameters, the optimizer's
//! moments and step, the finished epochs' figures and the caller's notes (the CLI keeps
//! its command line there). One safetensors file, written atomically after every epoch;
//! resuming from it reaches the same weights as a run that never stopped (the epochs'
//! shuffles are replayed from the seed, the schedule continues from the step count).
//!
//! Layout: the parameters as a checkpoint (`lstm.*`, `fc.*`), the moments under
//! `optimizer.exp_avg.` and `optimizer.exp_avg_sq.` (torch.optim.Adam's names) in the
//! same host layout, and metadata `optimizer.step`, `history`, `note.<key>`.

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint::{put_params, take_params, write_atomic};
use super::classifier::{Classifier, ClassifierParams, Device, OptimizerState};
use super::fit::{EpochStats, History};
use super::optimizer::TrainConfig;
use crate::error::{LstmError, Result};
use crate::interop::tensors::TensorMap;

const M: &str = "optimizer.exp_avg.";
const V: &str = "optimizer.exp_avg_sq.";

/// A run's state after some epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState {
    pub params: ClassifierParams,
    pub optimizer: OptimizerState,
    /// One entry per finished epoch.
    pub history: History,
    /// The caller's own strings, stored and restored as they are.
    pub notes: BTreeMap<String, String>,
}

impl TrainingState {
    /// The state of `model` after the epochs in `history` (a readback on the GPU).
    pub fn capture(
        model: &dyn Classifier,
        history: &History,
        notes: BTreeMap<String, String>,
    ) -> Result<Self> {
        Ok(TrainingState {
            params: model.params()?,
            optimizer: model.optimizer_state()?,
            history: history.clone(),
            notes,
        })
    }

    /// A model on `device` that continues this run with the settings `cfg`.
    pub fn restore(&self, device: &Device, cfg: TrainConfig) -> Result<Box<dyn Classifier>> {
        let mut model = device.classifier(&self.params, cfg)?;
        model.set_optimizer_state(&self.optimizer)?;
        Ok(model)
    }

    /// Writes the state to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = TensorMap::default();
        put_params(&mut map, "", &self.params)?;
        put_params(&mut map, M, &self.optimizer.m)?;
        put_params(&mut map, V, &self.optimizer.v)?;
        let meta = &mut map.metadata;
        meta.insert("optimizer.step".into(), self.optimizer.step.to_string());
        meta.insert("history".into(), history_to_string(&self.history));
        for (k, v) in &self.notes {
            meta.insert(format!("note.{k}"), v.clone());
        }
        write_atomic(path, &map.to_safetensors_bytes()?)
    }

    /// Reads a state that [`TrainingState::save`] wrote.
    pub fn load(path: &Path) -> Result<Self> {
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
        let notes = map
            .metadata
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("note.")?.to_string(), v.clone())))
            .collect();
        let params = take_params(&map, "")?;
        let optimizer = OptimizerState {
            step,
            m: take_params(&map, M)?,
            v: take_params(&map, V)?,
        };
        if optimizer.m.lstm.config != params.lstm.config {
            return Err(bad(
                path,
                "the moments are shaped unlike the parameters".into(),
            ));
        }
        Ok(TrainingState {
            params,
            optimizer,
            history,
            notes,
        })
    }
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

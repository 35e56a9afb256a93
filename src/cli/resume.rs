//! `lstm-wgpu train --resume DIR`: the run's settings travel inside its training state
//! (as the command line that reproduces them), so a resumed run is the same run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use lstm_wgpu::train::training_state::read_notes;
use lstm_wgpu::train::{StateParams, TrainingState};
use lstm_wgpu::{LstmError, Result};

use super::train::Args;

/// The training state's file name inside `--out`.
pub const STATE_FILE: &str = "train_state.safetensors";

/// Parses a stored command line back into [`Args`].
#[derive(Parser)]
struct Stored {
    #[command(flatten)]
    args: Args,
}

/// The command line that gives `a` again (every setting spelled out; never `--resume`).
/// Store it with the device the run resolved `auto` to, so a resume runs where it ran.
pub fn to_argv(a: &Args) -> Vec<String> {
    let name = |v: Option<clap::builder::PossibleValue>| {
        v.map(|p| p.get_name().to_string()).unwrap_or_default()
    };
    let mut argv: Vec<String> = [
        ("--epochs", a.epochs.to_string()),
        ("--batch", a.batch.to_string()),
        ("--hidden", a.hidden.to_string()),
        ("--lr", a.lr.to_string()),
        ("--schedule", name(a.schedule.to_possible_value())),
        ("--clip", a.clip.to_string()),
        ("--weight-decay", a.weight_decay.to_string()),
        ("--forget-bias", a.forget_bias.to_string()),
        ("--init", name(a.init.to_possible_value())),
        ("--seed", a.seed.to_string()),
        ("--device", name(a.device.to_possible_value())),
        ("--out", a.out.display().to_string()),
        ("--train-size", a.train_size.to_string()),
        ("--validation", a.validation.to_string()),
        ("--cell", name(a.cell.to_possible_value())),
    ]
    .into_iter()
    // `--key=value`: a value that starts with `-` (a negative number) stays a value.
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    if let Some(d) = &a.data {
        // Absolute, so that a resume from another folder reads the same data.
        let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        argv.push(format!("--data={}", d.display()));
    }
    for (on, flag) in [
        (a.distributed, "--distributed"),
        (a.adapter_per_rank, "--adapter-per-rank"),
    ] {
        if on {
            argv.push(flag.to_string());
        }
    }
    argv
}

/// The notes a training state carries: the settings as a command line.
pub fn notes(a: &Args) -> BTreeMap<String, String> {
    let argv = serde_json::to_string(&to_argv(a)).unwrap_or_default();
    BTreeMap::from([("argv".to_string(), argv)])
}

/// The settings of the run saved in `dir` (its stored command line); its output
/// stays in `dir`.
pub fn load_args(dir: &Path) -> Result<Args> {
    let path = dir.join(STATE_FILE);
    let notes = read_notes(&path)?;
    let bad = |reason: String| LstmError::Format {
        what: format!("training state {}", path.display()),
        reason,
    };
    let argv = notes
        .get("argv")
        .ok_or_else(|| bad("it has no stored command line (note.argv)".into()))?;
    let argv: Vec<String> =
        serde_json::from_str(argv).map_err(|e| bad(format!("note.argv: {e}")))?;
    let stored = Stored::try_parse_from(std::iter::once("train".to_string()).chain(argv))
        .map_err(|e| bad(format!("note.argv: {e}")))?;
    let mut args = stored.args;
    args.out = PathBuf::from(dir);
    Ok(args)
}

/// The training state saved in `dir`, of a model with parameters `P` (an LSTM's
/// `ClassifierParams`, a GRU's `GruClassifierParams`).
pub fn load_state<P: StateParams>(dir: &Path) -> Result<TrainingState<P>> {
    TrainingState::<P>::load_as(&dir.join(STATE_FILE))
}

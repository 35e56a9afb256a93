//! `lstm-wgpu forward --weights MODEL` for a whole Keras model (a `.keras` file, a
//! `.weights.h5` beside a `config.json`, or a `.npy` folder with a `model.json`).
//!
//! Writes the model's output as `y.npy` (`[B, T, F]`, or `[B, F]` when the last layer
//! has `return_sequences=False`; `[T, B, F]` without `--batch-first`) and, when the
//! model returns its last layer's states, each of them `[B, H]` in Keras's order:
//! `h_n.npy`, `c_n.npy` (LSTM), `h_n.npy` (GRU), or `forward_h_n.npy`,
//! `forward_c_n.npy`, `backward_h_n.npy`, `backward_c_n.npy` (Bidirectional).

use std::path::Path;

use lstm_wgpu::interop::format::CellKind;
use lstm_wgpu::interop::keras_model::convert::{Layer, Recurrent};
use lstm_wgpu::interop::keras_model::KerasModel;
use lstm_wgpu::interop::npy;
use lstm_wgpu::{LstmError, Result};
use ndarray::{ArrayD, Ix3};

use super::forward::{gpu_context, Args};

/// Whether `forward` should hand these weights to this module.
pub fn handles(weights: &Path) -> bool {
    KerasModel::is_model_path(weights)
}

pub fn run(a: &Args) -> Result<()> {
    let w = &a.weights;
    let unsupported = [
        (w.format.is_some(), "--format"),
        (w.prefix.is_some(), "--prefix"),
        (a.h0.is_some(), "--h0/--c0"),
        (a.seq_lens.is_some(), "--seq-lens"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(given, _)| *given) {
        return Err(LstmError::Config(format!(
            "{flag} does not apply to a whole Keras model ({})",
            w.weights.display()
        )));
    }
    let model = KerasModel::load(&w.weights)?;
    if let Some(cell) = w.cell {
        check_cell(&model, cell)?;
    }
    eprintln!(
        "weights: {} (Keras model): input {}, {} layers",
        w.weights.display(),
        model.input_size(),
        model.layers().len()
    );
    let input = super::forward::single_input(a)?;
    let x = npy::read_f32(input)?;
    let shape = x.shape().to_vec();
    let mut x = x.into_dimensionality::<Ix3>().map_err(|_| {
        LstmError::shape(
            input.display().to_string(),
            "[B, T, I] (or [T, B, I] without --batch-first)",
            format!("{shape:?}"),
        )
    })?;
    if !a.batch_first {
        x = x.permuted_axes([1, 0, 2]);
    }
    let ctx = gpu_context(a.device)?;
    match &ctx {
        Some(ctx) => eprintln!("device: {} (Dense layers on the CPU)", ctx.describe()),
        None => eprintln!("device: CPU"),
    }
    let out = model.run(x.view(), ctx.as_ref())?;
    let mut y = out.y;
    if !a.batch_first && y.ndim() == 3 {
        y.swap_axes(0, 1);
    }
    std::fs::create_dir_all(&a.out).map_err(|e| LstmError::io(&a.out, e))?;
    write(&a.out, "y", &y.as_standard_layout().into_owned())?;
    for (name, s) in &out.states {
        write(&a.out, name, &s.clone().into_dyn())?;
    }
    Ok(())
}

/// `convert` writes one recurrent layer as a PyTorch state dict; a whole model has
/// several layers (and Dense heads), so it is refused with the way to convert one layer.
pub fn no_convert(weights: &Path) -> LstmError {
    LstmError::Config(format!(
        "{} is a whole Keras model: convert takes one LSTM/GRU layer; point --weights at \
         one layer's folder of a .npy model (e.g. npy/<layer name>), or run the model \
         with `forward`",
        weights.display()
    ))
}

/// `--cell` names the cell the user expects; the model's config says what each layer
/// is, so a mismatch is the user's mistake, reported rather than ignored.
fn check_cell(model: &KerasModel, cell: CellKind) -> Result<()> {
    for layer in model.layers() {
        let Layer::Rnn(r) = layer else { continue };
        let (is, name) = match r.weights {
            Recurrent::Lstm(_) => (CellKind::Lstm, "LSTM"),
            Recurrent::Gru(_) => (CellKind::Gru, "GRU"),
        };
        if is != cell {
            return Err(LstmError::Config(format!(
                "--cell {cell:?}, but Keras layer {:?} is a {name} (the model's config says so; \
                 drop --cell)",
                r.name
            )));
        }
    }
    Ok(())
}

fn write(dir: &Path, name: &str, a: &ArrayD<f32>) -> Result<()> {
    let path = dir.join(format!("{name}.npy"));
    npy::write(&path, a)?;
    eprintln!("wrote {} {:?}", path.display(), a.shape());
    Ok(())
}

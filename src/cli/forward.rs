//! `lstm-wgpu forward`: inference on `.npy` inputs with PyTorch, Keras or ONNX weights;
//! `lstm-wgpu convert`: the same weights saved as a PyTorch state dict.
//!
//! A whole Keras model (`.keras`, `.weights.h5`, or a folder with `model.json`) goes to
//! `keras_forward`, which writes Keras's shapes instead.
//!
//! Otherwise outputs always have PyTorch's shapes, whatever the weights' framework:
//! `y.npy` `[T, B, D·H]` (`[B, T, D·H]` with `--batch-first`), `h_n.npy`/`c_n.npy` `[L·D, B, H]`
//! (a GRU has no `c_n.npy`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lstm_wgpu::interop::format::{self, CellKind, Format, Model};
use lstm_wgpu::interop::{npy, tensors::TensorMap, torch, torch_gru, torch_lstmp};
use lstm_wgpu::{
    cpu, ForwardOptions, GpuContext, GpuGru, GpuLstm, GpuLstmp, GruOptions, GruWeights, LstmError,
    LstmState, LstmpWeights, Result,
};
use ndarray::{ArrayD, Axis, Ix3};

/// The framework of a weight file, as `--format` spells it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// torch.nn.LSTM state dict (weight_ih_l0, …).
    #[value(alias = "pytorch")]
    Torch,
    /// Keras LSTM (kernel, recurrent_kernel, bias).
    Keras,
    /// ONNX LSTM operator inputs (W, R, B, P).
    Onnx,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Torch => Format::Torch,
            FormatArg::Keras => Format::Keras,
            FormatArg::Onnx => Format::Onnx,
        }
    }
}

/// Where the weights come from (shared by `forward` and `convert`).
#[derive(clap::Args, Debug)]
pub struct WeightsArgs {
    /// A safetensors file, or a directory of .npy files named after the framework's
    /// tensors (weight_ih_l0.npy …; kernel.npy, recurrent_kernel.npy, bias.npy; W.npy, R.npy, B.npy, P.npy).
    /// `forward` also takes a whole Keras model: a .keras file, a .weights.h5 beside a
    /// config.json, or a directory with a model.json.
    #[arg(long)]
    pub weights: PathBuf,
    /// The framework (default: told by the tensor names).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Name prefix of the recurrent layer's tensors inside a larger model, e.g. "lstm." (default: found from the names).
    #[arg(long)]
    pub prefix: Option<String>,
    /// The cell (default: told by the tensors: 4 gate blocks an LSTM, 3 a GRU).
    #[arg(long, value_enum)]
    pub cell: Option<CellKind>,
}

impl WeightsArgs {
    fn load(&self) -> Result<Model> {
        let (fmt, model) = format::load_model(
            &self.weights,
            self.format.map(Format::from),
            self.prefix.as_deref(),
            self.cell,
        )?;
        let (cell, c, extra) = match &model {
            Model::Lstm(w) => (
                "LSTM",
                w.config.clone(),
                format!(", peephole {:?}", w.config.peephole),
            ),
            Model::Gru(w) => ("GRU", w.config.layout(), String::new()),
            Model::Lstmp(w) => (
                "LSTM",
                w.config.layout(),
                format!(
                    ", hidden {} projected to {}",
                    w.config.hidden_size, w.config.proj_size
                ),
            ),
        };
        let dirs = if c.bidirectional {
            "bidirectional"
        } else {
            "unidirectional"
        };
        eprintln!(
            "weights: {} ({fmt}): {cell}, input {}, hidden {}, layers {}, {dirs}{extra}",
            self.weights.display(),
            c.input_size,
            c.hidden_size,
            c.num_layers,
        );
        Ok(model)
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Gpu,
    Cpu,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Input sequence, float32 or float64: [T, B, I] ([B, T, I] with --batch-first).
    /// With a .onnx model: FILE for its only graph input, else NAME=FILE for each (repeat).
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
    /// Initial hidden state [L·D, B, H] ([B, H] is accepted for one unidirectional layer).
    #[arg(long)]
    pub h0: Option<PathBuf>,
    /// Initial cell state, shaped like --h0 (an LSTM's; with --h0).
    #[arg(long, requires = "h0")]
    pub c0: Option<PathBuf>,
    /// Valid length of each sequence, int32 or int64 [B]; outputs past it are zero.
    #[arg(long)]
    pub seq_lens: Option<PathBuf>,
    /// Input and output y are [B, T, ·] instead of [T, B, ·].
    #[arg(long)]
    pub batch_first: bool,
    /// Without it: the GPU, or the CPU (with a message) when there is no GPU adapter.
    #[arg(long, value_enum)]
    pub device: Option<Device>,
    /// Directory for y.npy, h_n.npy and c_n.npy (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    if super::onnx_forward::is_onnx_model(&a.weights.weights) {
        return super::onnx_forward::run(&onnx_run(a), || gpu_context(a.device));
    }
    if super::keras_forward::handles(&a.weights.weights) {
        return super::keras_forward::run(a);
    }
    let input = single_input(a)?;
    let x = three_d(input, npy::read_f32(input)?, "[T, B, I] or [B, T, I]")?;
    let batch = if a.batch_first { x.dim().0 } else { x.dim().1 };
    let lens = read_lengths(a.seq_lens.as_deref(), batch)?;
    let mut weights = match a.weights.load()? {
        Model::Lstm(w) => w,
        Model::Gru(w) => return run_gru(a, w, x, lens),
        Model::Lstmp(w) => return run_lstmp(a, w, x, lens),
    };
    weights.config.batch_first = a.batch_first;
    let cfg = &weights.config;
    let initial = lstm_state_args(a, cfg.num_layers * cfg.num_directions())?;
    let opts = ForwardOptions {
        initial: initial.as_ref(),
        seq_lens: lens.as_deref(),
    };

    let out = match gpu_context(a.device)? {
        Some(ctx) => {
            eprintln!("device: {}", ctx.describe());
            GpuLstm::new(ctx, &weights)?.forward(x.view(), opts)?
        }
        None => {
            eprintln!("device: CPU");
            cpu::forward(&weights, x.view(), opts)?
        }
    };
    write_outputs(
        &a.out,
        &[("y", &out.y), ("h_n", &out.h_n), ("c_n", &out.c_n)],
    )
}

/// [`run`] for a GRU: `--h0` only, and no `c_n.npy`.
fn run_gru(
    a: &Args,
    mut w: GruWeights,
    x: ndarray::Array3<f32>,
    lens: Option<Vec<usize>>,
) -> Result<()> {
    if a.c0.is_some() {
        return Err(LstmError::Config(
            "a GRU has no cell state: drop --c0".into(),
        ));
    }
    w.config.batch_first = a.batch_first;
    let ld = w.config.num_layers * w.config.num_directions();
    let h0 = a.h0.as_deref().map(|h| read_state(h, ld)).transpose()?;
    let opts = GruOptions {
        initial: h0.as_ref(),
        seq_lens: lens.as_deref(),
    };
    let out = match gpu_context(a.device)? {
        Some(ctx) => {
            eprintln!("device: {}", ctx.describe());
            GpuGru::new(ctx, &w)?.forward(x.view(), opts)?
        }
        None => {
            eprintln!("device: CPU");
            cpu::gru_forward(&w, x.view(), opts)?
        }
    };
    write_outputs(&a.out, &[("y", &out.y), ("h_n", &out.h_n)])
}

/// [`run`] for an LSTM with a projection (`h_n` is `P` wide, `c_n` `H`).
fn run_lstmp(
    a: &Args,
    mut w: LstmpWeights,
    x: ndarray::Array3<f32>,
    lens: Option<Vec<usize>>,
) -> Result<()> {
    w.config.batch_first = a.batch_first;
    let ld = w.config.num_layers * w.config.num_directions();
    let initial = lstm_state_args(a, ld)?;
    let opts = ForwardOptions {
        initial: initial.as_ref(),
        seq_lens: lens.as_deref(),
    };
    let out = match gpu_context(a.device)? {
        Some(ctx) => {
            eprintln!("device: {}", ctx.describe());
            GpuLstmp::new(ctx, &w)?.forward(x.view(), opts)?
        }
        None => {
            eprintln!("device: CPU");
            cpu::lstmp_forward(&w, x.view(), opts)?
        }
    };
    write_outputs(
        &a.out,
        &[("y", &out.y), ("h_n", &out.h_n), ("c_n", &out.c_n)],
    )
}

/// `--h0` and `--c0` of an LSTM (or LSTMP), `[L·D, B, ·]` each: both or neither.
fn lstm_state_args(a: &Args, ld: usize) -> Result<Option<LstmState>> {
    match (&a.h0, &a.c0) {
        (Some(h), Some(c)) => Ok(Some(LstmState {
            h: read_state(h, ld)?,
            c: read_state(c, ld)?,
        })),
        (None, None) => Ok(None),
        _ => Err(LstmError::Config(
            "an LSTM's --h0 and --c0 go together".into(),
        )),
    }
}

/// `--seq-lens`, checked against the batch size.
fn read_lengths(path: Option<&Path>, batch: usize) -> Result<Option<Vec<usize>>> {
    let Some(path) = path else { return Ok(None) };
    let lens = npy::read_lengths(path)?;
    if lens.len() != batch {
        return Err(shape_error(
            path,
            format!("[{batch}] (one length per sequence of the input)"),
            format!("[{}]", lens.len()),
        ));
    }
    Ok(Some(lens))
}

/// The one `--input` of a weight file or a Keras model (only a .onnx graph takes several).
pub(super) fn single_input(a: &Args) -> Result<&Path> {
    match a.input.as_slice() {
        [input] => Ok(input),
        _ => Err(LstmError::Config("--input is given more than once".into())),
    }
}

/// A whole `.onnx` model's run (src/cli/onnx_forward.rs), with the flags it must refuse.
fn onnx_run(a: &Args) -> super::onnx_forward::OnnxRun<'_> {
    super::onnx_forward::OnnxRun {
        model: &a.weights.weights,
        inputs: &a.input,
        out: &a.out,
        weight_file_flags: [
            ("--cell", a.weights.cell.is_some()),
            ("--format", a.weights.format.is_some()),
            ("--prefix", a.weights.prefix.is_some()),
            ("--h0", a.h0.is_some()),
            ("--c0", a.c0.is_some()),
            ("--seq-lens", a.seq_lens.is_some()),
            ("--batch-first", a.batch_first),
        ],
    }
}

/// The GPU context to use, or `None` for the CPU path.
pub(super) fn gpu_context(device: Option<Device>) -> Result<Option<Arc<GpuContext>>> {
    match device {
        Some(Device::Cpu) => Ok(None),
        Some(Device::Gpu) => Ok(Some(Arc::new(GpuContext::new()?))),
        None => match GpuContext::new() {
            Ok(ctx) => Ok(Some(Arc::new(ctx))),
            Err(e @ LstmError::NoAdapter(_)) => {
                eprintln!("no GPU ({e}); running on the CPU instead (--device cpu silences this)");
                Ok(None)
            }
            Err(e) => Err(e),
        },
    }
}

/// An initial state file: `[L·D, B, H]`, or `[B, H]` when `L·D = 1` (Keras's convention).
fn read_state(path: &Path, ld: usize) -> Result<ndarray::Array3<f32>> {
    let a = npy::read_f32(path)?;
    let a = if a.ndim() == 2 && ld == 1 {
        a.insert_axis(Axis(0))
    } else {
        a
    };
    let want = if ld == 1 {
        "[L·D, B, H] or [B, H]"
    } else {
        "[L·D, B, H]"
    };
    three_d(path, a, want)
}

fn three_d(path: &Path, a: ArrayD<f32>, want: &str) -> Result<ndarray::Array3<f32>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix3>()
        .map_err(|_| shape_error(path, want.to_string(), format!("{shape:?}")))
}

fn shape_error(path: &Path, expected: String, got: String) -> LstmError {
    LstmError::Shape {
        what: path.display().to_string(),
        expected,
        got,
    }
}

fn write_outputs(dir: &Path, outputs: &[(&str, &ndarray::Array3<f32>)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| LstmError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for &(name, a) in outputs {
        let path = dir.join(format!("{name}.npy"));
        npy::write(&path, a)?;
        eprintln!("wrote {} {:?}", path.display(), a.shape());
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Output safetensors file, loadable by torch.nn.LSTM / torch.nn.GRU .load_state_dict (without peepholes).
    #[arg(long)]
    pub out: PathBuf,
}

/// `lstm-wgpu convert`: any supported weights → a PyTorch state dict (safetensors).
pub fn convert(a: &ConvertArgs) -> Result<()> {
    if super::keras_forward::handles(&a.weights.weights) {
        return Err(super::keras_forward::no_convert(&a.weights.weights));
    }
    match a.weights.load()? {
        Model::Lstm(weights) => {
            if weights.config.peephole != lstm_wgpu::Peephole::None {
                eprintln!("note: PyTorch's LSTM has no peepholes; they are saved as weight_peephole_*, which torch.nn.LSTM will not load");
            }
            torch::save_safetensors(&weights, &a.out)?;
        }
        Model::Lstmp(weights) => {
            let mut map = TensorMap::default();
            torch_lstmp::lstmp_to_tensors(&weights, "", &mut map)?;
            let bytes = map.to_safetensors_bytes()?;
            std::fs::write(&a.out, bytes).map_err(|e| LstmError::io(&a.out, e))?;
        }
        Model::Gru(weights) => {
            let mut map = TensorMap::default();
            torch_gru::gru_to_tensors(&weights, "", &mut map)?;
            let bytes = map.to_safetensors_bytes()?;
            std::fs::write(&a.out, bytes).map_err(|e| LstmError::io(&a.out, e))?;
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

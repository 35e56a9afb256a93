//! `lstm-wgpu inspect`: what the trained classifier does on one held-out digit — the
//! gates, cell and hidden state over its 28 steps (recorded on the CPU path and, when
//! there is an adapter, on the GPU, and compared), a gradient × input map from this
//! crate's backward, and the most class-selective units over the held-out digits.
//! The analysis is `lstm_wgpu::apps::{record_gates, inspect}`; this file picks the
//! digit, prints and writes the PNG.

use std::path::PathBuf;
use std::sync::Arc;

use lstm_wgpu::apps::generate::classify;
use lstm_wgpu::apps::inspect::{attribution, class_selectivity, unit_order};
use lstm_wgpu::apps::inspect_figure::{inspect_figure, InspectPanels};
use lstm_wgpu::apps::render::save_png;
use lstm_wgpu::apps::{record_gates, record_gates_gpu, GateRecord};
use lstm_wgpu::data::{load_bundled_mnist, BUNDLED_TRAIN_LEN};
use lstm_wgpu::train::{load_checkpoint, ClassifierParams};
use lstm_wgpu::{ForwardOptions, GpuContext, GpuLstm, LstmError, Result};
use ndarray::Axis;

/// Where the gates are recorded.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectDevice {
    /// The CPU path, and the GPU too when there is an adapter (their difference is printed).
    Auto,
    Cpu,
    /// The GPU (an adapter is required); the figure shows the GPU's record.
    Gpu,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The classifier checkpoint (`lstm-wgpu train` writes out/mnist_lstm.safetensors).
    #[arg(long, default_value = "out/mnist_lstm.safetensors")]
    pub weights: PathBuf,
    /// A held-out digit by its index among the 2,000 test digits.
    #[arg(long, conflicts_with = "class")]
    pub index: Option<usize>,
    /// The first held-out digit of this class that the classifier gets right.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..10))]
    pub class: Option<usize>,
    #[arg(long, value_enum, default_value_t = InspectDevice::Auto)]
    pub device: InspectDevice,
    /// How many of the most class-selective units to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long, default_value = "out/inspect")]
    pub out: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    if !a.weights.exists() {
        return Err(LstmError::value(
            "--weights",
            format!(
                "{} does not exist: train the classifier first (`cargo run --release`)",
                a.weights.display()
            ),
        ));
    }
    let params = load_checkpoint(&a.weights, None)?;
    let (_, test) = load_bundled_mnist()?.split(BUNDLED_TRAIN_LEN)?;
    let labels: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let predicted = classify(&params, test.images.view())?;
    let index = pick_digit(a, &labels, &predicted)?;
    let digit = test.images.index_axis(Axis(0), index);
    let (label, guess) = (labels[index], predicted[index]);
    println!("test digit {index}: label {label}, classifier says {guess}");

    let x = digit.insert_axis(Axis(0)); // [1, 28, 28]; the checkpoint is batch-first
    let x = if params.lstm.config.batch_first {
        x.to_owned()
    } else {
        x.permuted_axes([1, 0, 2]).to_owned()
    };
    let (record, gpu) = record(a, &params, x.view())?;
    let attr = attribution(&params, digit, guess, gpu.as_ref())?;
    let top_layer = (params.lstm.config.num_layers - 1) * params.lstm.config.num_directions();
    let trace = &record.traces[top_layer];
    let order = unit_order(trace.hidden.index_axis(Axis(1), 0));
    let title = format!(
        "test digit {index} (label {label}, classified {guess}) — LSTM({}) layer {}",
        params.lstm.config.hidden_size, params.lstm.config.num_layers
    );
    let fig = inspect_figure(&InspectPanels {
        digit,
        attribution: attr.view(),
        trace,
        index: 0,
        order: &order,
        title: &title,
    })?;
    let path = a.out.join(format!("digit_{index}.png"));
    save_png(&fig, &path)?;
    println!(
        "wrote {} ({}×{})",
        path.display(),
        fig.width(),
        fig.height()
    );
    selective_units(a, &params, &test.images, &labels)
}

/// The index of the digit to show.
fn pick_digit(a: &Args, labels: &[usize], predicted: &[usize]) -> Result<usize> {
    match (a.index, a.class) {
        (Some(i), _) if i < labels.len() => Ok(i),
        (Some(i), _) => Err(LstmError::value(
            "--index",
            format!("{i} is past the {} test digits", labels.len()),
        )),
        (None, Some(c)) => (0..labels.len())
            .find(|&i| labels[i] == c && predicted[i] == c)
            .ok_or_else(|| {
                LstmError::value(
                    "--class",
                    format!("no test digit of class {c} is classified right"),
                )
            }),
        (None, None) => Ok(0),
    }
}

/// The gate record (CPU and/or GPU as asked), and the GPU model when there is one.
fn record(
    a: &Args,
    params: &ClassifierParams,
    x: ndarray::ArrayView3<f32>,
) -> Result<(GateRecord, Option<GpuLstm>)> {
    let opts = ForwardOptions::default();
    let gpu = match a.device {
        InspectDevice::Cpu => None,
        InspectDevice::Gpu => Some(GpuLstm::new(Arc::new(GpuContext::new()?), &params.lstm)?),
        InspectDevice::Auto => match GpuContext::new() {
            Ok(ctx) => Some(GpuLstm::new(Arc::new(ctx), &params.lstm)?),
            Err(e) => {
                println!("no GPU adapter ({e}): recording on the CPU path only");
                None
            }
        },
    };
    let cpu = (a.device != InspectDevice::Gpu)
        .then(|| record_gates(&params.lstm, x, opts))
        .transpose()?;
    let on_gpu = gpu
        .as_ref()
        .map(|g| record_gates_gpu(g, x, opts))
        .transpose()?;
    if let (Some(c), Some(g), Some(lstm)) = (&cpu, &on_gpu, &gpu) {
        println!(
            "gates recorded on the CPU path and on the GPU ({}): max |difference| = {:.2e}",
            lstm.context().describe(),
            c.max_abs_diff(g)?
        );
    }
    let rec = on_gpu
        .or(cpu)
        .ok_or_else(|| LstmError::value("gate record", "none made"))?;
    Ok((rec, gpu))
}

/// Prints the units whose final hidden state best singles out one class.
fn selective_units(
    a: &Args,
    params: &ClassifierParams,
    images: &ndarray::Array3<f32>,
    labels: &[usize],
) -> Result<()> {
    let sel = class_selectivity(params, images.view(), labels)?;
    println!("most class-selective units (final hidden state over the {} test digits; score = (class mean − other classes' mean) / std):", labels.len());
    for s in sel.iter().take(a.top) {
        let on = if s.score > 0.0 { "on" } else { "off" };
        println!(
            "  unit {:>3}: class {}  score {:+.2}  ({on} for it: mean h {:+.3} vs {:+.3})",
            s.unit, s.class, s.score, s.mean_class, s.mean_rest
        );
    }
    let mut per_class = [0usize; 10];
    for s in sel.iter().filter(|s| s.score.abs() >= 2.0) {
        if let Some(n) = per_class.get_mut(s.class) {
            *n += 1;
        }
    }
    println!("units with |score| ≥ 2 per class 0–9: {per_class:?}");
    Ok(())
}

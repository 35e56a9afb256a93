//! Running a Keras model's layers in order, batch-first as Keras is.
//!
//! Each recurrent layer is one crate forward (the GPU's `GpuLstm`/`GpuGru`, or
//! `cpu::forward`/`cpu::gru_forward`; a GRU's `reset_after` either way on either);
//! a `Bidirectional` layer is one bidirectional forward whose two halves are merged as
//! Keras merges them. `Dense` layers are small and run on the CPU on either device.

use std::sync::Arc;

use ndarray::{
    concatenate, s, Array2, Array3, ArrayD, ArrayView, Axis, Dimension, RemoveAxis, Zip,
};

use super::convert::{DenseLayer, Layer, Recurrent, RnnLayer};
use super::spec::{Activation, Merge};
use crate::cpu;
use crate::error::{LstmError, Result};
use crate::gpu::{GpuContext, GpuGru, GpuLstm};
use crate::gru::{GruOptions, GruWeights};
use crate::sequence::ForwardOptions;

/// What a Keras model returns.
#[derive(Clone, Debug, PartialEq)]
pub struct KerasOutput {
    /// The model's output: `[B, T, F]` when the last layer returns sequences, else `[B, F]`.
    pub y: ArrayD<f32>,
    /// The last layer's states when the model returns them (`return_state=True`), each
    /// `[B, H]`, in Keras's order: `h_n`, `c_n` (an LSTM), `h_n` (a GRU), or
    /// `forward_h_n`, `forward_c_n`, `backward_h_n`, `backward_c_n` (a Bidirectional).
    pub states: States,
}

/// Named states `[B, H]`, as in [`KerasOutput::states`].
type States = Vec<(String, Array2<f32>)>;

/// The activations between two layers.
enum Tensor {
    /// `[B, T, F]`.
    Seq(Array3<f32>),
    /// `[B, F]`: the output of a layer with `return_sequences=False`.
    Last(Array2<f32>),
}

/// Runs `layers` on `x` `[B, T, I]`; on the GPU of `gpu`, else on the CPU.
pub fn run(
    layers: &[Layer],
    states_out: bool,
    x: Array3<f32>,
    gpu: Option<&Arc<GpuContext>>,
) -> Result<KerasOutput> {
    let mut value = Tensor::Seq(x);
    // The states of the last recurrent layer; returned only when the model's outputs
    // include them, which the config allows only when that layer is the last one.
    let mut states = Vec::new();
    for layer in layers {
        value = match (layer, value) {
            (Layer::Rnn(r), Tensor::Seq(x)) => {
                let (out, s) = run_rnn(r, &x, gpu)?;
                states = s;
                out
            }
            (Layer::Rnn(r), Tensor::Last(_)) => {
                return Err(LstmError::format(
                    format!("Keras layer {:?}", r.name),
                    "its input is not a sequence",
                ))
            }
            (Layer::Dense(d), Tensor::Seq(x)) => {
                let (b, t, f) = x.dim();
                let flat = x.into_shape_with_order((b * t, f)).map_err(shape_err)?;
                let y = dense(d, flat);
                let units = y.ncols();
                Tensor::Seq(y.into_shape_with_order((b, t, units)).map_err(shape_err)?)
            }
            (Layer::Dense(d), Tensor::Last(x)) => Tensor::Last(dense(d, x)),
            (Layer::Identity(_), v) => v,
        };
    }
    let y = match value {
        Tensor::Seq(y) => y.into_dyn(),
        Tensor::Last(y) => y.into_dyn(),
    };
    Ok(KerasOutput {
        y,
        states: if states_out { states } else { Vec::new() },
    })
}

fn shape_err(e: ndarray::ShapeError) -> LstmError {
    LstmError::value("Keras Dense layer input", e.to_string())
}

/// One recurrent layer: its output (merged, sequence or last step) and its states.
fn run_rnn(
    layer: &RnnLayer,
    x: &Array3<f32>,
    gpu: Option<&Arc<GpuContext>>,
) -> Result<(Tensor, States)> {
    let (y, h_n, c_n) = match &layer.weights {
        Recurrent::Lstm(w) => {
            let out = match gpu {
                Some(ctx) => {
                    GpuLstm::new(ctx.clone(), w)?.forward(x.view(), ForwardOptions::default())?
                }
                None => cpu::forward(w, x.view(), ForwardOptions::default())?,
            };
            (out.y, out.h_n, Some(out.c_n))
        }
        Recurrent::Gru(w) => {
            let (y, h_n) = gru_forward(w, x, gpu)?;
            (y, h_n, None)
        }
    };
    let h = layer.spec.units;
    let out = match (layer.spec.return_sequences, layer.merge) {
        (true, None | Some(Merge::Concat)) => Tensor::Seq(y),
        (true, Some(m)) => {
            Tensor::Seq(merge(y.slice(s![.., .., ..h]), y.slice(s![.., .., h..]), m))
        }
        (false, None) => Tensor::Last(h_n.index_axis(Axis(0), 0).to_owned()),
        (false, Some(m)) => Tensor::Last(merge(
            h_n.index_axis(Axis(0), 0),
            h_n.index_axis(Axis(0), 1),
            m,
        )),
    };
    let mut states = Vec::new();
    let dirs: &[&str] = if layer.merge.is_some() {
        &["forward_", "backward_"]
    } else {
        &[""]
    };
    for (d, dir) in dirs.iter().enumerate() {
        states.push((format!("{dir}h_n"), h_n.index_axis(Axis(0), d).to_owned()));
        if let Some(c_n) = &c_n {
            states.push((format!("{dir}c_n"), c_n.index_axis(Axis(0), d).to_owned()));
        }
    }
    Ok((out, states))
}

/// A GRU layer's `(y, h_n)` (`GpuGru` computes both `reset_after` forms).
fn gru_forward(
    weights: &GruWeights,
    x: &Array3<f32>,
    gpu: Option<&Arc<GpuContext>>,
) -> Result<(Array3<f32>, Array3<f32>)> {
    let opts = GruOptions::default();
    let out = match gpu {
        Some(ctx) => GpuGru::new(ctx.clone(), weights)?.forward(x.view(), opts)?,
        _ => cpu::gru_forward(weights, x.view(), opts)?,
    };
    Ok((out.y, out.h_n))
}

/// Keras's `Bidirectional` merge of the forward half `f` and the backward half `b`.
fn merge<'a, D: Dimension + RemoveAxis>(
    f: ArrayView<'a, f32, D>,
    b: ArrayView<'a, f32, D>,
    mode: Merge,
) -> ndarray::Array<f32, D> {
    match mode {
        Merge::Concat => concatenate(Axis(f.ndim() - 1), &[f, b]).expect("same shapes"),
        Merge::Sum => Zip::from(&f).and(&b).map_collect(|x, y| x + y),
        Merge::Mul => Zip::from(&f).and(&b).map_collect(|x, y| x * y),
        Merge::Ave => Zip::from(&f).and(&b).map_collect(|x, y| (x + y) / 2.0),
    }
}

/// `activation(x·kernel + bias)` for `x` `[N, in]`.
fn dense(layer: &DenseLayer, x: Array2<f32>) -> Array2<f32> {
    let mut y = x.dot(&layer.kernel);
    if let Some(b) = &layer.bias {
        y += b;
    }
    match layer.activation {
        Activation::Linear => {}
        Activation::Relu => y.mapv_inplace(|v| v.max(0.0)),
        Activation::Sigmoid => y.mapv_inplace(cpu::sigmoid),
        Activation::Tanh => y.mapv_inplace(f32::tanh),
        Activation::Softmax => {
            for mut row in y.rows_mut() {
                // Shifted by the row's maximum so exp cannot overflow, as Keras does.
                let m = row.fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                row.mapv_inplace(|v| (v - m).exp());
                let sum = row.sum();
                row /= sum;
            }
        }
    }
    y
}

/// Checks `x` `[B, T, I]` against the model's input width before any layer runs.
pub fn check_input(x: &ndarray::ArrayView3<f32>, input_size: usize) -> Result<()> {
    let (b, t, i) = x.dim();
    if i != input_size || b == 0 || t == 0 {
        return Err(LstmError::shape(
            "Keras model input x [B, T, I]",
            format!("[B ≥ 1, T ≥ 1, {input_size}]"),
            format!("{:?}", x.shape()),
        ));
    }
    if let Some(v) = crate::sequence::first_non_finite(&x.view()) {
        return Err(LstmError::value("input x", format!("contains {v}")));
    }
    Ok(())
}

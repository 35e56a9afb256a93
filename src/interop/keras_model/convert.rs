//! A Keras model's layers in the crate's layout: each `LSTM`/`GRU` (or `Bidirectional`
//! pair) becomes a one-layer `LstmWeights`/`GruWeights`, each `Dense` a matrix.
//!
//! The tensors come in one [`TensorMap`] named `{layer}/{variable}` with Keras's
//! variable names: `kernel`, `recurrent_kernel`, `bias` (`forward_…`/`backward_…`
//! inside a `Bidirectional`), `kernel`, `bias` for `Dense`. The widths are checked
//! layer by layer, so a wrong shape is reported with the tensor's name.

use ndarray::{concatenate, s, Array1, Array2, ArrayView2, Axis, Ix1, Ix2};

use super::spec::{Activation, Cell, LayerKind, LayerSpec, Merge, ModelSpec, RnnSpec};
use crate::error::{LstmError, Result};
use crate::gru::{GruConfig, GruLayerWeights, GruWeights};
use crate::interop::keras;
use crate::interop::tensors::TensorMap;
use crate::weights::LstmWeights;

/// The parameters of one recurrent layer (both directions of a `Bidirectional`).
#[derive(Clone, Debug)]
pub enum Recurrent {
    Lstm(LstmWeights),
    Gru(GruWeights),
}

/// An `LSTM`/`GRU` layer, or a `Bidirectional` one (`merge` is then `Some`).
#[derive(Clone, Debug)]
pub struct RnnLayer {
    pub name: String,
    pub weights: Recurrent,
    pub spec: RnnSpec,
    pub merge: Option<Merge>,
}

/// `y = activation(x·kernel + bias)` on the last axis.
#[derive(Clone, Debug)]
pub struct DenseLayer {
    pub name: String,
    /// `[in, units]`, as Keras stores it.
    pub kernel: Array2<f32>,
    pub bias: Option<Array1<f32>>,
    pub activation: Activation,
}

#[derive(Clone, Debug)]
pub enum Layer {
    Rnn(RnnLayer),
    Dense(DenseLayer),
    /// A layer that is the identity at inference (`Dropout`), kept for its name.
    Identity(String),
}

/// The layers of `spec` with their weights from `map`, and the model's input width.
pub fn build(spec: &ModelSpec, map: &TensorMap) -> Result<(Vec<Layer>, usize)> {
    let mut width: Option<usize> = None;
    let mut input_size = None;
    // The input is a sequence; a layer with return_sequences=False ends that.
    let mut sequence = true;
    let mut layers = Vec::new();
    for layer in &spec.layers {
        let built = match &layer.kind {
            LayerKind::Rnn(rnn) => rnn_layer(layer, *rnn, None, width, sequence, map)?,
            LayerKind::Bidirectional { rnn, merge } => {
                rnn_layer(layer, *rnn, Some(*merge), width, sequence, map)?
            }
            LayerKind::Dense {
                units,
                activation,
                use_bias,
            } => dense_layer(&layer.name, (*units, *activation, *use_bias), width, map)?,
            LayerKind::Identity => Layer::Identity(layer.name.clone()),
        };
        let (into, out) = match &built {
            Layer::Rnn(r) => {
                sequence = r.spec.return_sequences;
                let (i, h) = match &r.weights {
                    Recurrent::Lstm(w) => (w.config.input_size, w.config.hidden_size),
                    Recurrent::Gru(w) => (w.config.input_size, w.config.hidden_size),
                };
                let d = if r.merge == Some(Merge::Concat) { 2 } else { 1 };
                (Some(i), Some(d * h))
            }
            Layer::Dense(d) => (Some(d.kernel.nrows()), Some(d.kernel.ncols())),
            Layer::Identity(_) => (None, width),
        };
        input_size = input_size.or(into);
        width = out;
        layers.push(built);
    }
    let input_size =
        input_size.ok_or_else(|| LstmError::format("Keras model", "has no layer with weights"))?;
    Ok((layers, input_size))
}

fn rnn_layer(
    layer: &LayerSpec,
    spec: RnnSpec,
    merge: Option<Merge>,
    width: Option<usize>,
    sequence: bool,
    map: &TensorMap,
) -> Result<Layer> {
    if !sequence {
        return Err(LstmError::format(
            format!("Keras layer {:?}", layer.name),
            "its input is not a sequence: the layer before it has return_sequences=False",
        ));
    }
    let prefix = format!("{}/", layer.name);
    let weights = match spec.cell {
        Cell::Lstm => Recurrent::Lstm(lstm_weights(&prefix, spec, merge.is_some(), width, map)?),
        Cell::Gru { reset_after } => {
            let dir0 = if merge.is_some() { "forward_" } else { "" };
            let input = input_width(map, &format!("{prefix}{dir0}kernel"), width)?;
            let config = GruConfig::new(input, spec.units)
                .bidirectional(merge.is_some())
                .bias(spec.use_bias)
                .batch_first(true)
                .reset_after(reset_after);
            Recurrent::Gru(gru_weights(&prefix, config, map)?)
        }
    };
    Ok(Layer::Rnn(RnnLayer {
        name: layer.name.clone(),
        weights,
        spec,
        merge,
    }))
}

/// The existing one-layer importer, then the checks it cannot make alone: the sizes and
/// the bias the config promises (it infers them from the tensors).
fn lstm_weights(
    prefix: &str,
    spec: RnnSpec,
    bidirectional: bool,
    width: Option<usize>,
    map: &TensorMap,
) -> Result<LstmWeights> {
    let mut w = keras::from_tensors(map, prefix)?;
    let c = &w.config;
    let dir0 = if bidirectional { "forward_" } else { "" };
    let kernel = format!("{prefix}{dir0}kernel");
    if c.hidden_size != spec.units || width.is_some_and(|i| i != c.input_size) {
        return Err(LstmError::shape(
            format!("tensor {kernel}"),
            format!("[{}, {}]", width.unwrap_or(c.input_size), 4 * spec.units),
            format!("{:?}", map.shape(&kernel).unwrap_or_default()),
        ));
    }
    if c.bidirectional != bidirectional {
        return Err(LstmError::format(
            format!("Keras layer {prefix}"),
            "its tensors do not match the config's Bidirectional wrapper",
        ));
    }
    if c.bias != spec.use_bias {
        let bias = format!("{prefix}{dir0}bias");
        return Err(LstmError::shape(
            format!("tensor {bias}"),
            if spec.use_bias {
                format!("[{}]", 4 * spec.units)
            } else {
                "absent (use_bias=False)".into()
            },
            if c.bias { "present" } else { "missing" },
        ));
    }
    w.config.batch_first = true;
    Ok(w)
}

/// Keras's GRU: `kernel` `(I, 3H)` and `recurrent_kernel` `(H, 3H)` with column blocks
/// z, r, h; `bias` `(2, 3H)` = [input; recurrent] with `reset_after=True`, else `(3H)`.
/// The crate's rows are r, z, n: blocks swapped and matrices transposed. A single
/// bias goes to `b_ih` with a zero `b_hh`: with reset_after=False Keras adds it outside
/// the reset gate, which is where the crate's `b_in` sits.
/// One Keras `GRU` layer's tensors under `prefix` (a layer's `.npy` folder, or a
/// safetensors file; `forward_…`/`backward_…` for a `Bidirectional`), the config told by
/// their shapes: `kernel` (I, 3H), `recurrent_kernel` (H, 3H), and `bias` (2, 3H) for
/// `reset_after=True`, (3H) for `reset_after=False`, absent for `use_bias=False`.
pub fn gru_from_tensors(map: &TensorMap, prefix: &str) -> Result<GruWeights> {
    let bidirectional = map.contains(&format!("{prefix}forward_recurrent_kernel"));
    let first = if bidirectional { "forward_" } else { "" };
    let shape = |v: &str| {
        map.shape(&format!("{prefix}{first}{v}"))
            .map(<[usize]>::to_vec)
    };
    let (kernel, recurrent) = (shape("kernel"), shape("recurrent_kernel"));
    let sizes = match (kernel.as_deref(), recurrent.as_deref()) {
        (Some(&[i, g]), Some(&[h, g2])) if h > 0 && h.checked_mul(3) == Some(g) && g == g2 => {
            Some((i, h))
        }
        _ => None,
    };
    let Some((i, h)) = sizes else {
        return Err(LstmError::shape(
            format!("Keras GRU tensors {prefix}{first}kernel / recurrent_kernel"),
            "(I, 3H) / (H, 3H)",
            format!("{kernel:?} / {recurrent:?}"),
        ));
    };
    let bias = shape("bias");
    let config = GruConfig::new(i, h)
        .bidirectional(bidirectional)
        .bias(bias.is_some())
        .reset_after(bias.as_ref().is_none_or(|b| b.len() != 1));
    gru_weights(prefix, config, map)
}

fn gru_weights(prefix: &str, config: GruConfig, map: &TensorMap) -> Result<GruWeights> {
    config.validate()?;
    let (i, h) = (config.input_size, config.hidden_size);
    let dirs: &[&str] = if config.bidirectional {
        &["forward_", "backward_"]
    } else {
        &[""]
    };
    let mut layers = Vec::new();
    for dir in dirs {
        let name = |v: &str| format!("{prefix}{dir}{v}");
        let matrix = |v: &str, rows: usize| -> Result<Array2<f32>> {
            let k = map.get(&name(v), &[rows, 3 * h])?;
            let k = k.into_dimensionality::<Ix2>().expect("checked shape");
            Ok(rzn_rows(k.view(), h))
        };
        let (b_ih, b_hh) = match (config.bias, config.reset_after) {
            (false, _) => (None, None),
            (true, true) => {
                let b = map.get(&name("bias"), &[2, 3 * h])?;
                let b = b.into_dimensionality::<Ix2>().expect("checked shape");
                let b = rzn_rows(b.view(), h);
                (Some(b.column(0).to_owned()), Some(b.column(1).to_owned()))
            }
            (true, false) => {
                let b = map.get(&name("bias"), &[3 * h])?;
                let b = b.into_dimensionality::<Ix1>().expect("checked shape");
                let b = rzn_rows(b.view().insert_axis(Axis(0)), h);
                (Some(b.column(0).to_owned()), Some(Array1::zeros(3 * h)))
            }
        };
        layers.push(GruLayerWeights {
            w_ih: matrix("kernel", i)?,
            w_hh: matrix("recurrent_kernel", h)?,
            b_ih,
            b_hh,
        });
    }
    let w = GruWeights { config, layers };
    w.validate()?;
    w.check_finite()?;
    Ok(w)
}

/// `k` `[rows, 3H]` with column blocks z, r, h → `[3H, rows]` with row blocks r, z, n.
fn rzn_rows(k: ArrayView2<f32>, h: usize) -> Array2<f32> {
    let block = |b: usize| k.slice(s![.., b * h..(b + 1) * h]);
    let cols = concatenate(Axis(1), &[block(1), block(0), block(2)]).expect("equal rows");
    cols.reversed_axes().as_standard_layout().into_owned()
}

fn dense_layer(
    layer: &str,
    (units, activation, use_bias): (usize, Activation, bool),
    width: Option<usize>,
    map: &TensorMap,
) -> Result<Layer> {
    let name = |v: &str| format!("{layer}/{v}");
    let input = input_width(map, &name("kernel"), width)?;
    let kernel = map.get(&name("kernel"), &[input, units])?;
    let bias = if use_bias {
        let b = map.get(&name("bias"), &[units])?;
        Some(b.into_dimensionality::<Ix1>().expect("checked shape"))
    } else {
        None
    };
    let kernel = kernel.into_dimensionality::<Ix2>().expect("checked shape");
    if let Some(v) = kernel
        .iter()
        .chain(bias.iter().flatten())
        .find(|v| !v.is_finite())
    {
        return Err(LstmError::value(
            format!("weights of Keras layer {layer:?}"),
            format!("contains {v}"),
        ));
    }
    Ok(Layer::Dense(DenseLayer {
        name: layer.to_string(),
        kernel,
        bias,
        activation,
    }))
}

/// The input width of a layer: the previous layer's output width, or for the first
/// layer the rows of its kernel.
fn input_width(map: &TensorMap, kernel: &str, width: Option<usize>) -> Result<usize> {
    match (width, map.shape(kernel)) {
        (Some(w), _) => Ok(w),
        (None, Some(&[rows, _])) if rows > 0 => Ok(rows),
        (None, found) => Err(LstmError::shape(
            format!("tensor {kernel}"),
            "[I, gates·H]",
            found.map_or("missing".into(), |s| format!("{s:?}")),
        )),
    }
}

//! The layer list of a Keras 3 model, from its `config.json` (what `model.to_json()`
//! returns): a chain of `InputLayer`, `LSTM`, `GRU`, `Bidirectional`, `Dropout` and
//! `Dense` layers. Everything the crate cannot compute exactly as Keras does is an
//! error naming the layer and the setting, never a silent approximation.

use serde_json::{Map, Value};

use crate::error::{LstmError, Result};

/// The recurrent cell of an `LSTM` or `GRU` layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    /// `reset_after`: Keras's default `true`; `false` has one bias vector.
    Gru {
        reset_after: bool,
    },
}

/// How a `Bidirectional` wrapper combines its two directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    Concat,
    Sum,
    Mul,
    Ave,
}

/// A `Dense` layer's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Softmax,
    Relu,
    Sigmoid,
    Tanh,
}

/// The settings of an `LSTM`/`GRU` layer that change what it computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnSpec {
    pub cell: Cell,
    pub units: usize,
    pub use_bias: bool,
    pub return_sequences: bool,
    pub return_state: bool,
}

/// One layer with weights (or a pass-through) of the chain.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Rnn(RnnSpec),
    Bidirectional {
        rnn: RnnSpec,
        merge: Merge,
    },
    Dense {
        units: usize,
        activation: Activation,
        use_bias: bool,
    },
    /// `Dropout`: the identity at inference.
    Identity,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// The layer's name: its weights' folder in a `.npy` model, its `vars` name in HDF5.
    pub name: String,
    pub kind: LayerKind,
}

/// The model: its layers in order (the `InputLayer` left out) and whether its outputs
/// include the last layer's states (`return_state=True` on the last layer).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub layers: Vec<LayerSpec>,
    pub states_out: bool,
}

/// Parses a Keras 3 model config; `source` names the file in errors.
pub fn parse(text: &str, source: &str) -> Result<ModelSpec> {
    let err = |reason: String| LstmError::format(source, reason);
    let root: Value =
        serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let class = str_field(&root, "class_name", source)?;
    if class != "Sequential" && class != "Functional" {
        return Err(err(format!(
            "model class {class:?} is not supported: a Sequential or Functional model is"
        )));
    }
    let functional = class == "Functional";
    let config = object(&root, "config", source)?;
    let list = match config.get("layers") {
        Some(Value::Array(l)) => l,
        _ => return Err(err("config.layers is missing or not a list".into())),
    };
    let mut layers = Vec::new();
    let mut last_name: Option<String> = None;
    for (k, entry) in list.iter().enumerate() {
        let what = format!("{source}: layer {k}");
        let class = str_field(entry, "class_name", &what)?;
        let cfg = object(entry, "config", &what)?;
        let name = match cfg.get("name").or_else(|| entry.get("name")) {
            Some(Value::String(n)) => n.clone(),
            _ => return Err(LstmError::format(what, "has no name")),
        };
        if functional {
            check_inbound(entry, last_name.as_deref(), &name, source)?;
        }
        last_name = Some(name.clone());
        let what = format!("{source}: layer {name:?} ({class})");
        if let Some(kind) = layer_kind(class, cfg, &what)? {
            layers.push(LayerSpec { name, kind });
        }
    }
    let Some(last) = layers.last() else {
        return Err(err("the model has no layers with weights".into()));
    };
    // How many outputs a last layer with `return_state` gives: the output, then h (and
    // c for an LSTM), per direction.
    let state_outputs = |r: &RnnSpec, dirs: usize| match r.cell {
        Cell::Lstm => 1 + 2 * dirs,
        Cell::Gru { .. } => 1 + dirs,
    };
    let last_states = match &last.kind {
        LayerKind::Rnn(r) if r.return_state => Some(state_outputs(r, 1)),
        LayerKind::Bidirectional { rnn: r, .. } if r.return_state => Some(state_outputs(r, 2)),
        _ => None,
    };
    let states_out = match config.get("output_layers") {
        None => last_states.is_some(),
        Some(outputs) => outputs_are_states(outputs, last_name.as_deref(), last_states, source)?,
    };
    Ok(ModelSpec { layers, states_out })
}

/// The kind of a layer of class `class`, `None` for an `InputLayer`.
fn layer_kind(class: &str, cfg: &Map<String, Value>, what: &str) -> Result<Option<LayerKind>> {
    Ok(Some(match class {
        "InputLayer" => return Ok(None),
        "Dropout" | "SpatialDropout1D" | "GaussianDropout" | "GaussianNoise" => LayerKind::Identity,
        "LSTM" | "GRU" => {
            let rnn = rnn_spec(class, cfg, what)?;
            if get_bool(cfg, "go_backwards", false, what)? {
                return Err(unsupported(
                    what,
                    "go_backwards=True outside a Bidirectional",
                ));
            }
            LayerKind::Rnn(rnn)
        }
        "Bidirectional" => bidirectional(cfg, what)?,
        "Dense" => LayerKind::Dense {
            units: get_units(cfg, what)?,
            activation: activation(cfg, what)?,
            use_bias: get_bool(cfg, "use_bias", true, what)?,
        },
        other => {
            return Err(LstmError::format(
                what,
                format!(
                    "layer class {other:?} is not supported (supported: InputLayer, LSTM, GRU, \
                     Bidirectional, Dense, Dropout)"
                ),
            ))
        }
    }))
}

fn bidirectional(cfg: &Map<String, Value>, what: &str) -> Result<LayerKind> {
    let merge = match cfg.get("merge_mode") {
        Some(Value::String(m)) if m == "concat" => Merge::Concat,
        Some(Value::String(m)) if m == "sum" => Merge::Sum,
        Some(Value::String(m)) if m == "mul" => Merge::Mul,
        Some(Value::String(m)) if m == "ave" => Merge::Ave,
        None => Merge::Concat,
        Some(other) => {
            return Err(unsupported(
                what,
                &format!("merge_mode {other} (concat, sum, mul and ave are)"),
            ))
        }
    };
    let inner = |key: &str| -> Result<Option<RnnSpec>> {
        let Some(layer) = cfg.get(key).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let what = format!("{what}, {key}");
        let class = str_field(layer, "class_name", &what)?;
        let lcfg = object(layer, "config", &what)?;
        if class != "LSTM" && class != "GRU" {
            return Err(unsupported(&what, &format!("wrapped class {class:?}")));
        }
        rnn_spec(class, lcfg, &what).map(Some)
    };
    let rnn = inner("layer")?.ok_or_else(|| LstmError::format(what, "has no wrapped layer"))?;
    // A reversed forward layer would swap the halves' roles: not worth the extra path.
    if cfg
        .get("layer")
        .and_then(|l| l.pointer("/config/go_backwards"))
        == Some(&Value::Bool(true))
    {
        return Err(unsupported(what, "a wrapped layer with go_backwards=True"));
    }
    // A custom backward layer must compute what the forward one does, reversed.
    if inner("backward_layer")?.is_some_and(|b| b != rnn) {
        return Err(unsupported(
            what,
            "a backward_layer unlike the forward layer",
        ));
    }
    Ok(LayerKind::Bidirectional { rnn, merge })
}

/// An `LSTM`/`GRU` config; settings that only matter for training (`dropout`,
/// `recurrent_dropout`) or speed (`unroll`, `use_cudnn`) are ignored, and `stateful`
/// is accepted: one call starts from zero states, as a freshly reset stateful layer does.
fn rnn_spec(class: &str, cfg: &Map<String, Value>, what: &str) -> Result<RnnSpec> {
    for (key, default) in [("activation", "tanh"), ("recurrent_activation", "sigmoid")] {
        let got = get_str(cfg, key, default, what)?;
        if got != default {
            return Err(unsupported(
                what,
                &format!("{key}={got:?} (only Keras's default {default:?} is)"),
            ));
        }
    }
    let cell = if class == "GRU" {
        Cell::Gru {
            reset_after: get_bool(cfg, "reset_after", true, what)?,
        }
    } else {
        Cell::Lstm
    };
    Ok(RnnSpec {
        cell,
        units: get_units(cfg, what)?,
        use_bias: get_bool(cfg, "use_bias", true, what)?,
        return_sequences: get_bool(cfg, "return_sequences", false, what)?,
        return_state: get_bool(cfg, "return_state", false, what)?,
    })
}

fn activation(cfg: &Map<String, Value>, what: &str) -> Result<Activation> {
    Ok(match cfg.get("activation") {
        None | Some(Value::Null) => Activation::Linear,
        Some(Value::String(a)) => match a.as_str() {
            "linear" => Activation::Linear,
            "softmax" => Activation::Softmax,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            other => {
                return Err(unsupported(
                    what,
                    &format!("activation {other:?} (linear, softmax, relu, sigmoid and tanh are)"),
                ))
            }
        },
        Some(other) => return Err(unsupported(what, &format!("activation {other}"))),
    })
}

/// A Functional model's layer must take the previous layer's first output, and only it:
/// the crate runs a chain, not a graph.
fn check_inbound(entry: &Value, prev: Option<&str>, name: &str, source: &str) -> Result<()> {
    // Every tensor the layer takes, in args or kwargs (an `initial_state=` tensor too).
    let mut history = Vec::new();
    if let Some(nodes) = entry.get("inbound_nodes") {
        keras_histories(nodes, &mut history);
    }
    let ok = match (prev, history.as_slice()) {
        (None, []) => true,
        (Some(p), [h]) => {
            h.get(0).and_then(Value::as_str) == Some(p) && h.get(2) == Some(&0.into())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(LstmError::format(
            source,
            format!(
                "layer {name:?} does not take the previous layer's output alone: only a chain \
                 of layers is supported, not a graph"
            ),
        ))
    }
}

/// Collects every `keras_history` (a tensor's producing layer) inside `v`.
fn keras_histories<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(h) = m.get("keras_history") {
                out.push(h);
            }
            m.values().for_each(|x| keras_histories(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| keras_histories(x, out)),
        _ => {}
    }
}

/// Whether a Functional model's `output_layers` are the last layer's output alone
/// (`false`) or its output and all its states (`true`; `last_states`: how many outputs
/// that is, when the last layer returns its states). Any other list is an error.
fn outputs_are_states(
    outputs: &Value,
    last: Option<&str>,
    last_states: Option<usize>,
    source: &str,
) -> Result<bool> {
    // One output is written flat, `["name", 0, 0]`; several as a list of those.
    let list: Vec<&Value> = match outputs.as_array() {
        Some(a) if a.first().is_some_and(Value::is_string) => vec![outputs],
        Some(a) => a.iter().collect(),
        None => vec![],
    };
    let indices: Vec<Option<u64>> = list
        .iter()
        .map(|o| {
            let named_last = o.get(0).and_then(Value::as_str) == last;
            o.get(2).and_then(Value::as_u64).filter(|_| named_last)
        })
        .collect();
    let in_order = indices
        .iter()
        .enumerate()
        .all(|(k, i)| *i == Some(k as u64));
    match (in_order, indices.len()) {
        (true, 1) => Ok(false),
        (true, n) if n > 1 && last_states == Some(n) => Ok(true),
        _ => Err(LstmError::format(
            source,
            "the model's outputs are not the last layer's output (and states): \
             only a chain of layers is supported",
        )),
    }
}

fn unsupported(what: &str, setting: &str) -> LstmError {
    LstmError::format(what, format!("{setting} is not supported"))
}

fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| LstmError::format(what, format!("{key} is missing or not a string")))
}

fn object<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Map<String, Value>> {
    v.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| LstmError::format(what, format!("{key} is missing or not an object")))
}

fn get_bool(cfg: &Map<String, Value>, key: &str, default: bool, what: &str) -> Result<bool> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(LstmError::format(
            what,
            format!("{key} is {other}, not a boolean"),
        )),
    }
}

fn get_str<'a>(
    cfg: &'a Map<String, Value>,
    key: &str,
    default: &'a str,
    what: &str,
) -> Result<&'a str> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(LstmError::format(
            what,
            format!("{key} is {other}, not a string"),
        )),
    }
}

fn get_units(cfg: &Map<String, Value>, what: &str) -> Result<usize> {
    // Beyond u32 no weight could be indexed anyway; the cap keeps 4·units from overflowing.
    match cfg.get("units").and_then(Value::as_u64) {
        Some(u) if u > 0 && u <= u64::from(u32::MAX) => Ok(u as usize),
        _ => Err(LstmError::format(
            what,
            format!("units is {:?}, not an integer in 1..2^32", cfg.get("units")),
        )),
    }
}

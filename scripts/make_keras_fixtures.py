#!/usr/bin/env python3
"""Stacked Keras 3 models and Keras's own outputs, for tests/keras_model.rs.

Each case writes ``tests/fixtures/keras/<case>/`` holding

* ``model.keras``: the model as ``model.save`` writes it (a zip of ``config.json``,
  ``metadata.json`` and ``model.weights.h5``);
* ``npy/``: the same model as a folder of ``.npy`` files, the layout
  ``lstm_wgpu::interop::keras_model`` reads without HDF5: ``model.json`` (what
  ``model.to_json()`` returns: the same layer list as ``config.json``) and one
  subfolder per layer with weights, named after the layer, holding its variables
  under Keras's names: ``kernel.npy``, ``recurrent_kernel.npy``, ``bias.npy``
  (``forward_``/``backward_`` prefixes inside a ``Bidirectional``; ``kernel.npy``,
  ``bias.npy`` for ``Dense``);
* ``x.npy`` (``[B, T, I]``), ``y.npy`` (the model's first output) and, when the last
  layer returns its states, those states under the names ``lstm-wgpu forward`` writes
  them: ``h_n.npy``, ``c_n.npy`` (``[B, H]``), or ``forward_h_n.npy``,
  ``forward_c_n.npy``, ``backward_h_n.npy``, ``backward_c_n.npy`` for a Bidirectional.

Case ``lstm_dense`` also has ``model.weights.h5`` with a sibling ``config.json``
(the ``.weights.h5``-only form).

Every variable (biases too) is drawn from a seeded U(-0.5, 0.5) with no exact zeros,
so a misplaced gate block or bias cannot hide behind Keras's zero initialisers.

Regenerate from the repository root (TensorFlow is not needed: the torch backend):

    KERAS_BACKEND=torch /work/venv/bin/python scripts/make_keras_fixtures.py
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "keras")
L = keras.layers


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        a = rng.uniform(-0.5, 0.5, size=tuple(v.shape)).astype(np.float32)
        a[a == 0] = 1e-3
        v.assign(a)


def rnn_vars(layer):
    """Keras's names of an RNN layer's variables, in its weight order."""
    names = ["kernel", "recurrent_kernel"]
    if layer.cell.use_bias:
        names.append("bias")
    return names


def write_npy_folder(model, d):
    os.makedirs(d)
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(json.loads(model.to_json()), f, indent=1)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, L.Bidirectional):
            names = [p + n for p in ("forward_", "backward_") for n in rnn_vars(layer.forward_layer)]
        elif isinstance(layer, L.Dense):
            names = ["kernel", "bias"][: len(ws)]
        else:
            names = rnn_vars(layer)
        assert len(names) == len(ws), (layer.name, names, len(ws))
        os.makedirs(os.path.join(d, layer.name))
        for n, w in zip(names, ws):
            np.save(os.path.join(d, layer.name, f"{n}.npy"), w.astype(np.float32))


def state_names(last):
    if isinstance(last, L.Bidirectional):
        per = ["h_n", "c_n"] if isinstance(last.forward_layer, L.LSTM) else ["h_n"]
        return [f"{p}_{n}" for p in ("forward", "backward") for n in per]
    return ["h_n", "c_n"] if isinstance(last, L.LSTM) else ["h_n"]


def write_case(name, model, batch, seed, weights_h5=False):
    d = os.path.join(OUT_DIR, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    randomize(model, seed)
    _, t, i = model.inputs[0].shape
    x = np.random.default_rng(seed + 1).uniform(-1, 1, size=(batch, t, i)).astype(np.float32)
    out = model(x, training=False)
    outs = [np.asarray(keras.ops.convert_to_numpy(o)) for o in (out if isinstance(out, (list, tuple)) else [out])]
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "y.npy"), outs[0])
    if len(outs) > 1:
        for n, o in zip(state_names(model.layers[-1]), outs[1:], strict=True):
            np.save(os.path.join(d, f"{n}.npy"), o)
    model.save(os.path.join(d, "model.keras"))
    write_npy_folder(model, os.path.join(d, "npy"))
    if weights_h5:
        model.save_weights(os.path.join(d, "model.weights.h5"))
        with zipfile.ZipFile(os.path.join(d, "model.keras")) as z:
            z.extract("config.json", d)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
    print(f"{name}: outputs {[o.shape for o in outs]}, {size} bytes")


def main():
    keras.utils.set_random_seed(0)
    # (a) the seed model's shape, smaller: two stacked LSTMs and a softmax Dense.
    a = keras.Sequential([
        keras.Input((6, 4)),
        L.LSTM(8, return_sequences=True),
        L.LSTM(6),
        L.Dense(3, activation="softmax"),
    ], name="lstm_dense")
    write_case("lstm_dense", a, batch=3, seed=10, weights_h5=True)

    # (b) a Bidirectional LSTM (concat) feeding a GRU (reset_after=True), sequences out.
    inp = keras.Input((5, 3))
    h = L.Bidirectional(L.LSTM(4, return_sequences=True))(inp)
    h = L.GRU(5, return_sequences=True)(h)
    write_case("bilstm_gru", keras.Model(inp, h, name="bilstm_gru"), batch=2, seed=20)

    # (c) a GRU with reset_after=False (one bias vector) returning its state.
    inp = keras.Input((7, 3))
    outs = L.GRU(6, reset_after=False, return_sequences=True, return_state=True)(inp)
    write_case("gru_state", keras.Model(inp, outs, name="gru_state"), batch=2, seed=30)

    # (d) an LSTM without bias under a Bidirectional LSTM (merge_mode ave) returning states.
    inp = keras.Input((6, 4))
    h = L.LSTM(5, return_sequences=True, use_bias=False)(inp)
    outs = L.Bidirectional(L.LSTM(4, return_state=True), merge_mode="ave")(h)
    write_case("bilstm_state", keras.Model(inp, outs, name="bilstm_state"), batch=3, seed=40)

    # (e) a Bidirectional GRU without bias (merge_mode sum), Dropout (the identity at
    # inference) and two Dense layers applied per time step (relu, sigmoid).
    inp = keras.Input((5, 3))
    h = L.Bidirectional(L.GRU(4, use_bias=False, return_sequences=True), merge_mode="sum")(inp)
    h = L.Dropout(0.25)(h)
    h = L.Dense(5, activation="relu")(h)
    h = L.Dense(2, activation="sigmoid")(h)
    write_case("bigru_dense_seq", keras.Model(inp, h, name="bigru_dense_seq"), batch=2, seed=50)


if __name__ == "__main__":
    main()

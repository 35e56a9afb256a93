#!/usr/bin/env python3
"""Conformance fixtures from the real frameworks: PyTorch, Keras and ONNX Runtime.

Each case writes a directory ``tests/fixtures/interop/<case>/`` holding

* the weights in the framework's own names and layout: ``weights/`` (one ``.npy``
  file per tensor: ``weight_ih_l0.npy`` …, ``kernel.npy`` …, ``W.npy`` …) or
  ``weights.safetensors``;
* ``x.npy`` (the input as the framework takes it: ``[T,B,I]``, ``[B,T,I]`` for Keras
  and the batch-first PyTorch case), and when the case has them ``h0.npy``/``c0.npy``
  and ``seq_lens.npy``;
* ``y.npy``, ``h_n.npy``, ``c_n.npy``: the framework's own outputs, rearranged into
  the crate's (PyTorch's) shapes: ``y`` in ``x``'s layout with last dim ``D*H``,
  ``h_n``/``c_n`` ``[L*D,B,H]``. ONNX's ``Y`` ``[T,D,B,H]`` becomes ``[T,B,D*H]``.

Every framework output is also checked against a float64 NumPy implementation of
the crate's equations (with the weights converted to the crate's layout here,
independently of the Rust importers), so a framework quirk shows up here rather than
as a puzzling test failure.

Afterwards (unless ``--no-export-check``) the script builds the crate and, for every
case without peepholes, runs ``lstm-wgpu convert`` on the weights, loads the result
with ``torch.nn.LSTM.load_state_dict(strict=True)``, runs PyTorch's forward and
compares it with the framework's outputs and with ``lstm-wgpu forward --device cpu``.

Regenerate (from the repository root; versions used are in the fixtures' README):

    pip install torch tensorflow onnx onnxruntime safetensors numpy
    python3 scripts/make_interop_fixtures.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN reorders float sums from run to run; off keeps Keras's outputs reproducible.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "interop")
# Framework vs float64 reference: all three compute in float32.
REF_ATOL = 1e-5


# ---------------------------------------------------------------------------
# The crate's equations in float64 (gate order i,f,g,o; peepholes (i,f,o)).

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference(x, layers, h0, c0, lens):
    """x [T,B,I]; layers[l][d] = dict(w_ih, w_hh, b, p); returns y [T,B,D*H], h_n, c_n."""
    T, B, _ = x.shape
    D = len(layers[0])
    H = layers[0][0]["w_hh"].shape[1]
    lens = np.full(B, T) if lens is None else np.asarray(lens)
    inp = x.astype(np.float64)
    h_n, c_n = [], []
    for l, dirs in enumerate(layers):
        out = np.zeros((T, B, D * H))
        for d, w in enumerate(dirs):
            h = h0[l * D + d].astype(np.float64)
            c = c0[l * D + d].astype(np.float64)
            for t in range(T) if d == 0 else reversed(range(T)):
                on = (t < lens)[:, None]
                z = inp[t] @ w["w_ih"].T + h @ w["w_hh"].T + w["b"]
                zi, zf, zg, zo = np.split(z, 4, axis=1)
                p = w.get("p")
                if p is not None:
                    zi = zi + p[:H] * c
                    zf = zf + p[H:2 * H] * c
                c_new = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
                if p is not None:
                    zo = zo + p[2 * H:] * c_new
                h_new = sigmoid(zo) * np.tanh(c_new)
                h = np.where(on, h_new, h)
                c = np.where(on, c_new, c)
                out[t, :, d * H:(d + 1) * H] = np.where(on, h, 0.0)
            h_n.append(h)
            c_n.append(c)
        inp = out
    return out, np.stack(h_n), np.stack(c_n)


# ---------------------------------------------------------------------------
# Writing a case.

def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def uniform(rng, k, *shape):
    """U(-k, k) with no exact zeros (a zero would hide a missing or misplaced tensor)."""
    a = rng.uniform(-k, k, size=shape).astype(np.float32)
    a[a == 0] = 1e-3
    return a


def write_case(name, weights, arrays, ref, batch_first):
    """weights: dict of npy files, or (filename, dict) for a safetensors file."""
    d = os.path.join(OUT_DIR, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if isinstance(weights, tuple):
        save_file({k: f32(v) for k, v in weights[1].items()}, os.path.join(d, weights[0]))
    else:
        os.makedirs(os.path.join(d, "weights"))
        for k, v in weights.items():
            np.save(os.path.join(d, "weights", f"{k}.npy"), f32(v))
    for k, v in arrays.items():
        np.save(os.path.join(d, f"{k}.npy"), v)
    # The framework's outputs against the float64 reference (in time-major layout).
    y, h_n, c_n = arrays["y"], arrays["h_n"], arrays["c_n"]
    y_tm = y.transpose(1, 0, 2) if batch_first else y
    errs = [np.abs(a - b).max() for a, b in zip((y_tm, h_n, c_n), ref)]
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
    print(f"{name}: framework vs float64 reference max err {max(errs):.2e}, {size} bytes")
    assert max(errs) < REF_ATOL, (name, errs)


# ---------------------------------------------------------------------------
# PyTorch.

def torch_layers(lstm, prefix=""):
    sd = {k: v.numpy() for k, v in lstm.state_dict().items()}
    D = 2 if lstm.bidirectional else 1
    layers = []
    for l in range(lstm.num_layers):
        dirs = []
        for d in range(D):
            sfx = f"l{l}" + ("_reverse" if d else "")
            dirs.append(dict(w_ih=sd[f"weight_ih_{sfx}"], w_hh=sd[f"weight_hh_{sfx}"],
                             b=sd[f"bias_ih_{sfx}"] + sd[f"bias_hh_{sfx}"]))
        layers.append(dirs)
    return layers


def torch_case(name, I, H, L, T, B, bidir, seed, lengths=None, batch_first=False,
               wrapper=False, x_dtype=np.float32):
    torch.manual_seed(seed)
    D = 2 if bidir else 1
    lstm = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bidir, batch_first=batch_first)
    with torch.no_grad():
        for p in lstm.parameters():
            p[p == 0] = 1e-3
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    h0, c0 = torch.randn(L * D, B, H), torch.randn(L * D, B, H)
    with torch.no_grad():
        if lengths is None:
            y, (h_n, c_n) = lstm(x, (h0, c0))
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
            y, (h_n, c_n) = lstm(packed, (h0, c0))
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(
                y, batch_first=batch_first, total_length=T)
    arrays = dict(x=x.numpy().astype(x_dtype), h0=h0.numpy(), c0=c0.numpy(),
                  y=y.numpy(), h_n=h_n.numpy(), c_n=c_n.numpy())
    if lengths is not None:
        arrays["seq_lens"] = np.array(lengths, dtype=np.int64)
    x_tm = arrays["x"].transpose(1, 0, 2) if batch_first else arrays["x"]
    ref = reference(x_tm, torch_layers(lstm), h0.numpy(), c0.numpy(), lengths)
    sd = {k: v.numpy() for k, v in lstm.state_dict().items()}
    if wrapper:
        # As inside a larger model: the LSTM's tensors under "lstm.", plus a head.
        head = torch.nn.Linear(D * H, 3)
        tensors = {f"lstm.{k}": v for k, v in sd.items()}
        tensors.update({f"head.{k}": v.detach().numpy() for k, v in head.state_dict().items()})
        weights = ("weights.safetensors", tensors)
    else:
        weights = sd
    write_case(name, weights, arrays, ref, batch_first)


# ---------------------------------------------------------------------------
# Keras (inputs are batch-first; initial states [B,H] per direction).

def keras_layer_ref(kernel, rk, bias):
    return dict(w_ih=kernel.T, w_hh=rk.T, b=bias)


def keras_case(name, I, H, T, B, bidir, seed):
    import keras
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    k = 1 / np.sqrt(H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    states = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(2 * D)]
    weights = [[uniform(rng, k, I, 4 * H), uniform(rng, k, H, 4 * H), uniform(rng, k, 4 * H)]
               for _ in range(D)]
    lstm = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    if bidir:
        layer = keras.layers.Bidirectional(lstm)
        layer.build((B, T, I))
        layer.forward_layer.set_weights(weights[0])
        layer.backward_layer.set_weights(weights[1])
        y, fh, fc, bh, bc = layer(x, initial_state=states)
        h_n, c_n = np.stack([fh, bh]), np.stack([fc, bc])
        tensors = {}
        for dname, w in zip(("forward_", "backward_"), weights):
            for tname, t in zip(("kernel", "recurrent_kernel", "bias"), w):
                tensors[f"bi_lstm.{dname}{tname}"] = t
        files = ("weights.safetensors", tensors)
        h0, c0 = np.stack(states[0::2]), np.stack(states[1::2])
    else:
        lstm.build((B, T, I))
        lstm.set_weights(weights[0])
        y, h, c = lstm(x, initial_state=states)
        h_n, c_n = np.asarray(h)[None], np.asarray(c)[None]
        files = dict(zip(("kernel", "recurrent_kernel", "bias"), weights[0]))
        # Keras's own [B,H] convention, which the forward command accepts for one layer.
        h0, c0 = states
    arrays = dict(x=x, h0=h0, c0=c0, y=np.asarray(y), h_n=np.asarray(h_n), c_n=np.asarray(c_n))
    hh0 = h0 if h0.ndim == 3 else h0[None]
    cc0 = c0 if c0.ndim == 3 else c0[None]
    ref = reference(x.transpose(1, 0, 2), [[keras_layer_ref(*w) for w in weights]],
                    hh0, cc0, None)
    write_case(name, files, arrays, ref, batch_first=True)


# ---------------------------------------------------------------------------
# ONNX Runtime (one LSTM node; gates i,o,f,c; peepholes i,o,f).

def onnx_case(name, I, H, T, B, bidir, seed, lengths=None, peephole=True, bias=True):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    k = 1 / np.sqrt(H)
    W, R = uniform(rng, k, D, 4 * H, I), uniform(rng, k, D, 4 * H, H)
    Bb = uniform(rng, k, D, 8 * H) if bias else None
    P = uniform(rng, k, D, 3 * H) if peephole else None
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((D, B, H)).astype(np.float32)
    c0 = rng.standard_normal((D, B, H)).astype(np.float32)
    lens = None if lengths is None else np.array(lengths, dtype=np.int32)
    feeds = dict(X=x, W=W, R=R, B=Bb, sequence_lens=lens, initial_h=h0, initial_c=c0, P=P)
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    # Optional inputs that are left out are given as "" in the node.
    names = [n if feeds[n] is not None else "" for n in order]
    while names[-1] == "":
        names.pop()
    elem = {np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32}
    inputs = [helper.make_tensor_value_info(n, elem[feeds[n].dtype.type], feeds[n].shape)
              for n in names if n]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in
               [("Y", [T, D, B, H]), ("Y_h", [D, B, H]), ("Y_c", [D, B, H])]]
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=H,
                            direction="bidirectional" if bidir else "forward")
    model = helper.make_model(helper.make_graph([node], name, inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    Y, Y_h, Y_c = sess.run(None, {n: feeds[n] for n in names if n})
    # [T,D,B,H] -> [T,B,D*H]: directions side by side on the last axis, as in PyTorch.
    y = Y.transpose(0, 2, 1, 3).reshape(T, B, D * H)
    arrays = dict(x=x, h0=h0, c0=c0, y=y, h_n=Y_h, c_n=Y_c)
    if lens is not None:
        arrays["seq_lens"] = lens
    gates = np.r_[0:H, 2 * H:3 * H, 3 * H:4 * H, H:2 * H]  # crate i,f,g,o from ONNX i,o,f,c
    layer = []
    for d in range(D):
        b = Bb[d, :4 * H] + Bb[d, 4 * H:] if bias else np.zeros(4 * H)
        w = dict(w_ih=W[d][gates], w_hh=R[d][gates], b=b[gates])
        if peephole:
            w["p"] = P[d][np.r_[0:H, 2 * H:3 * H, H:2 * H]]  # crate i,f,o from ONNX i,o,f
        layer.append(w)
    ref = reference(x, [layer], h0, c0, lengths)
    files = dict(W=W, R=R)
    if bias:
        files["B"] = Bb
    if peephole:
        files["P"] = P
    write_case(name, files, arrays, ref, batch_first=False)


CASES = [
    ("torch_one_layer_init", lambda n: torch_case(n, I=5, H=7, L=1, T=6, B=3, bidir=False,
                                                  seed=11)),
    ("torch_two_layer_bidir", lambda n: torch_case(n, I=4, H=6, L=2, T=5, B=2, bidir=True,
                                                   seed=12, batch_first=True, wrapper=True)),
    ("torch_var_lengths", lambda n: torch_case(n, I=3, H=4, L=2, T=6, B=4, bidir=True,
                                               seed=13, lengths=[6, 2, 4, 1],
                                               x_dtype=np.float64)),
    ("keras_seq_state", lambda n: keras_case(n, I=4, H=5, T=6, B=3, bidir=False, seed=21)),
    ("keras_bidir", lambda n: keras_case(n, I=3, H=4, T=5, B=2, bidir=True, seed=22)),
    ("onnx_peephole_lens", lambda n: onnx_case(n, I=4, H=5, T=6, B=3, bidir=False, seed=31,
                                               lengths=[6, 3, 1])),
    ("onnx_bidir_peephole_lens", lambda n: onnx_case(n, I=3, H=4, T=5, B=3, bidir=True,
                                                     seed=32, lengths=[2, 5, 3])),
    ("onnx_bidir_no_bias", lambda n: onnx_case(n, I=3, H=4, T=4, B=2, bidir=True, seed=33,
                                               peephole=False, bias=False)),
]


# ---------------------------------------------------------------------------
# Export check: lstm-wgpu convert -> torch.nn.LSTM.load_state_dict -> PyTorch forward.

def weights_path(case_dir):
    st = os.path.join(case_dir, "weights.safetensors")
    return st if os.path.exists(st) else os.path.join(case_dir, "weights")


def export_check(name, binary):
    d = os.path.join(OUT_DIR, name)
    if os.path.exists(os.path.join(d, "weights", "P.npy")):
        return  # peepholes: PyTorch's LSTM has none
    load = lambda f: np.load(os.path.join(d, f"{f}.npy"))  # noqa: E731
    x, y, h_n, c_n = load("x"), load("y"), load("h_n"), load("c_n")
    batch_first = name.startswith("keras") or name == "torch_two_layer_bidir"
    with tempfile.TemporaryDirectory() as tmp:
        exported = os.path.join(tmp, "lstm.safetensors")
        subprocess.run([binary, "convert", "--weights", weights_path(d), "--out", exported],
                       check=True, capture_output=True)
        sd = load_file(exported)
        L = 1 + max(int(k.split("_l")[1].split("_")[0]) for k in sd)
        bidir = any(k.endswith("_reverse") for k in sd)
        H, I = sd["weight_hh_l0"].shape[1], sd["weight_ih_l0"].shape[1]
        lstm = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bidir,
                             bias="bias_ih_l0" in sd, batch_first=batch_first)
        lstm.load_state_dict(sd, strict=True)
        args = [binary, "forward", "--weights", exported, "--input", os.path.join(d, "x.npy"),
                "--device", "cpu", "--out", tmp]
        if os.path.exists(os.path.join(d, "h0.npy")):
            args += ["--h0", os.path.join(d, "h0.npy"), "--c0", os.path.join(d, "c0.npy")]
        if batch_first:
            args.append("--batch-first")
        lens = None
        if os.path.exists(os.path.join(d, "seq_lens.npy")):
            lens = load("seq_lens")
            args += ["--seq-lens", os.path.join(d, "seq_lens.npy")]
        subprocess.run(args, check=True, capture_output=True)
        crate = [np.load(os.path.join(tmp, f"{n}.npy")) for n in ("y", "h_n", "c_n")]
    h0 = torch.from_numpy(load("h0")).reshape(L * (2 if bidir else 1), -1, H)
    c0 = torch.from_numpy(load("c0")).reshape(h0.shape)
    xt = torch.from_numpy(x.astype(np.float32))
    with torch.no_grad():
        if lens is None:
            ty, (th, tc) = lstm(xt, (h0, c0))
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xt, torch.from_numpy(lens.astype(np.int64)), batch_first=batch_first,
                enforce_sorted=False)
            ty, (th, tc) = lstm(packed, (h0, c0))
            ty, _ = torch.nn.utils.rnn.pad_packed_sequence(
                ty, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    torch_out = [ty.numpy(), th.numpy(), tc.numpy()]
    vs_framework = max(np.abs(a - b).max() for a, b in zip(torch_out, (y, h_n, c_n)))
    vs_crate = max(np.abs(a - b).max() for a, b in zip(torch_out, crate))
    print(f"{name}: exported -> torch.nn.LSTM: vs {name.split('_')[0]} {vs_framework:.2e}, "
          f"vs lstm-wgpu forward {vs_crate:.2e}")
    assert vs_framework < REF_ATOL and vs_crate < REF_ATOL, name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-export-check", action="store_true",
                    help="skip building the crate and the convert -> PyTorch check")
    args = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, make in CASES:
        make(name)
    if args.no_export_check:
        return
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO_ROOT, check=True)
    binary = os.path.join(REPO_ROOT, "target", "release", "lstm-wgpu")
    for name, _ in CASES:
        export_check(name, binary)


if __name__ == "__main__":
    main()

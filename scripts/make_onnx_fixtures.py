#!/usr/bin/env python3
"""Whole ONNX model files and ONNX Runtime's outputs for tests/onnx_model.rs.

Each case writes ``tests/fixtures/onnx/<case>/``:

* ``model.onnx``: the model;
* ``inputs/<graph input name>.npy``: what the test binds to each graph input;
* ``expected/<graph output name>.npy``: ONNX Runtime's outputs on those inputs.

Cases exported from PyTorch use the TorchScript exporter (``dynamo=False``): it writes
the ``LSTM``/``GRU`` operators with the glue the issue is about (zero initial states
built from ``Shape``/``Gather``/``Unsqueeze``/``Concat``/``ConstantOfShape``/``Slice``,
``Squeeze`` between layers, ``Transpose``/``Reshape`` for bidirectional stacks). The
script checks that the glue is really there, and that ONNX Runtime agrees with PyTorch.
The other cases are built with ``onnx.helper`` to cover what PyTorch never writes:
``direction="reverse"``, peepholes ``P``, ``sequence_lens`` and initial states as graph
inputs, ``layout=1``, ``linear_before_reset=0``, typed ``float_data`` initializers
(PyTorch writes ``raw_data``), and ``Expand``/``Cast``/``Identity``.

Regenerate from the repository root (torch 2.15, onnx 1.23, onnxruntime 1.32):

    /work/venv/bin/python scripts/make_onnx_fixtures.py
"""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "onnx")
OPSET = 17
# ONNX Runtime vs PyTorch: both float32, different summation order.
TORCH_ATOL = 1e-5


def save_case(name: str, model: onnx.ModelProto, inputs: dict[str, np.ndarray],
              reference: onnx.ModelProto | None = None) -> dict:
    """Writes the model, its inputs and ONNX Runtime's outputs (of `reference`, an
    equivalent model, when ONNX Runtime cannot run `model` itself); returns the outputs."""
    onnx.checker.check_model(model)
    case = os.path.join(OUT_DIR, name)
    shutil.rmtree(case, ignore_errors=True)
    os.makedirs(os.path.join(case, "inputs"))
    os.makedirs(os.path.join(case, "expected"))
    onnx.save_model(model, os.path.join(case, "model.onnx"))
    for k, v in inputs.items():
        np.save(os.path.join(case, "inputs", f"{k}.npy"), v)
    runnable = reference if reference is not None else model
    onnx.checker.check_model(runnable)
    sess = ort.InferenceSession(runnable.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    outs = dict(zip(names, sess.run(names, inputs)))
    for k, v in outs.items():
        np.save(os.path.join(case, "expected", f"{k}.npy"), v)
    ops = sorted({n.op_type for n in model.graph.node})
    size = os.path.getsize(os.path.join(case, "model.onnx"))
    print(f"{name}: {size} bytes, ops {ops}, outputs {[(k, v.shape) for k, v in outs.items()]}")
    return outs


def export_torch(module: torch.nn.Module, x: torch.Tensor, outputs: list[str]) -> onnx.ModelProto:
    path = os.path.join(OUT_DIR, "_export.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and batch-size notes
        torch.onnx.export(
            module, (x,), path, dynamo=False, opset_version=OPSET,
            input_names=["x"], output_names=outputs,
            dynamic_axes={"x": {0: "D0", 1: "D1"}},
        )
    model = onnx.load(path)
    os.remove(path)
    return model


def require_ops(model: onnx.ModelProto, ops: set[str]) -> None:
    present = {n.op_type for n in model.graph.node}
    missing = ops - present
    assert not missing, f"the exported graph lacks {missing}: {sorted(present)}"


def torch_case(name, module, x, outputs, glue):
    module.eval()
    model = export_torch(module, x, outputs)
    require_ops(model, glue)
    got = save_case(name, model, {"x": x.numpy()})
    with torch.no_grad():
        want = module(x)
    flat = [want[0], *want[1]] if isinstance(want[1], tuple) else list(want)
    for k, w in zip(outputs, flat):
        err = np.abs(got[k] - w.numpy()).max()
        assert err <= TORCH_ATOL, f"{name}/{k}: ONNX Runtime vs PyTorch max err {err}"


def rand(rng, *shape, scale=0.5):
    return (rng.uniform(-1, 1, size=shape) * scale).astype(np.float32)


def typed_init(name: str, a: np.ndarray) -> TensorProto:
    """An initializer in the typed fields (float_data / int64_data), not raw_data."""
    dt = TensorProto.FLOAT if a.dtype == np.float32 else TensorProto.INT64
    return helper.make_tensor(name, dt, a.shape, a.flatten().tolist(), raw=False)


def out(name: str, rank: int) -> onnx.ValueInfoProto:
    """A float graph output of `rank` with free sizes (the checker wants a shape)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"{name}_{k}" for k in range(rank)])


def lstm_reverse_case(rng):
    """direction=reverse, peepholes, sequence_lens and both initial states as inputs."""
    t, b, i, h = 6, 3, 4, 5
    node = helper.make_node(
        "LSTM", ["x", "W", "R", "B", "seq_lens", "h0", "c0", "P"], ["Y", "Y_h", "Y_c"],
        name="lstm_reverse", hidden_size=h, direction="reverse",
    )
    inits = [typed_init("W", rand(rng, 1, 4 * h, i)), typed_init("R", rand(rng, 1, 4 * h, h)),
             numpy_helper.from_array(rand(rng, 1, 8 * h), "B"), typed_init("P", rand(rng, 1, 3 * h))]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [node], "lstm_reverse",
        [helper.make_tensor_value_info("x", f, ["T", "B", i]),
         helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["B"]),
         helper.make_tensor_value_info("h0", f, [1, "B", h]),
         helper.make_tensor_value_info("c0", f, [1, "B", h])],
        [out("Y", 4), out("Y_h", 3), out("Y_c", 3)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    save_case("lstm_reverse_peephole_lens", model, {
        "x": rand(rng, t, b, i, scale=1.0), "seq_lens": np.array([6, 3, 5], np.int32),
        "h0": rand(rng, 1, b, h), "c0": rand(rng, 1, b, h)})


def lstm_layout1_glue_case(rng):
    """layout=1 bidirectional with a learned initial state broadcast by Expand, int64
    lengths cast to int32, and Identity/Flatten on the outputs. ONNX Runtime refuses
    layout=1, so the expected outputs come from the same graph in layout 0 with
    Transposes around the LSTM (x [B,T,I] -> [T,B,I], Y [T,D,B,H] -> [B,T,D,H],
    states [B,D,H] <-> [D,B,H])."""
    t, b, i, h = 5, 2, 3, 4
    f = TensorProto.FLOAT
    prefix = [
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero_axes"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "two_h"], ["state_shape"], axis=0),
        helper.make_node("Expand", ["h_init", "state_shape"], ["h0"]),  # [B, D, H]
        helper.make_node("Cast", ["lens"], ["lens32"], to=TensorProto.INT32),
    ]
    suffix = [
        helper.make_node("Identity", ["Y"], ["y"]),
        helper.make_node("Flatten", ["Y_h"], ["h_flat"], axis=1),
    ]
    lstm_inputs = ["W", "R", "B", "lens32"]
    batch_first = [helper.make_node("LSTM", ["x", *lstm_inputs, "h0"], ["Y", "Y_h"], name="lstm_layout1",
                                    hidden_size=h, direction="bidirectional", layout=1)]
    time_major = [
        helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]),
        helper.make_node("Transpose", ["h0"], ["h0_tm"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["x_tm", *lstm_inputs, "h0_tm"], ["Y_tm", "Y_h_tm"], name="lstm_layout0",
                         hidden_size=h, direction="bidirectional"),
        helper.make_node("Transpose", ["Y_tm"], ["Y"], perm=[2, 0, 1, 3]),
        helper.make_node("Transpose", ["Y_h_tm"], ["Y_h"], perm=[1, 0, 2]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "zero_axes"),
        numpy_helper.from_array(np.array([2, h], np.int64), "two_h"),
        numpy_helper.from_array(rand(rng, 1, 2, h), "h_init"),
        numpy_helper.from_array(rand(rng, 2, 4 * h, i), "W"),
        numpy_helper.from_array(rand(rng, 2, 4 * h, h), "R"),
        numpy_helper.from_array(rand(rng, 2, 8 * h), "B"),
    ]

    def model(lstm_nodes):
        graph = helper.make_graph(
            prefix + lstm_nodes + suffix, "lstm_layout1_glue",
            [helper.make_tensor_value_info("x", f, ["B", "T", i]),
             helper.make_tensor_value_info("lens", TensorProto.INT64, ["B"])],
            [out("y", 4), out("h_flat", 2)], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])

    save_case("lstm_layout1_expand_cast", model(batch_first), {
        "x": rand(rng, b, t, i, scale=1.0), "lens": np.array([3, 5], np.int64)},
        reference=model(time_major))


def gru_no_linear_before_reset_case(rng):
    """Bidirectional GRU, linear_before_reset=0 (ONNX's default), lengths and h0."""
    t, b, i, h = 5, 3, 3, 4
    f = TensorProto.FLOAT
    node = helper.make_node("GRU", ["x", "W", "R", "B", "seq_lens", "h0"], ["Y", "Y_h"],
                            name="gru_lbr0", hidden_size=h, direction="bidirectional")
    inits = [typed_init("W", rand(rng, 2, 3 * h, i)), typed_init("R", rand(rng, 2, 3 * h, h)),
             typed_init("B", rand(rng, 2, 6 * h))]
    graph = helper.make_graph(
        [node], "gru_lbr0",
        [helper.make_tensor_value_info("x", f, ["T", "B", i]),
         helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["B"]),
         helper.make_tensor_value_info("h0", f, [2, "B", h])],
        [out("Y", 4), out("Y_h", 3)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    save_case("gru_bidir_lbr0_lens", model, {
        "x": rand(rng, t, b, i, scale=1.0), "seq_lens": np.array([5, 2, 4], np.int32),
        "h0": rand(rng, 2, b, h)})


def const(name: str, a) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(a), name))


def glue_ops_cases(rng):
    """The glue ops alone, on their corner cases (negative indices and steps, clamped
    bounds, 0 and -1 in Reshape, default perm, Squeeze without axes, int32 outputs), each
    result a graph output: opset 17 (axes as inputs) and opset 9 (the attribute forms)."""
    f, i64, i32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32
    x_info = [helper.make_tensor_value_info("x", f, [3, 4, 5])]
    x = {"x": rand(rng, 3, 4, 5, scale=1.0)}
    nodes17 = [
        const("idx", np.array([-1, 0], np.int64)),
        const("starts", np.array([-1, 1], np.int64)), const("ends", np.array([-10, 100], np.int64)),
        const("axes", np.array([2, 0], np.int64)), const("steps", np.array([-2, 1], np.int64)),
        const("shape_0m1", np.array([0, -1], np.int64)), const("unsq_axes", np.array([0, -1], np.int64)),
        const("zero", np.array(0, np.int64)), const("one_axis", np.array([1], np.int64)),
        const("expand_to", np.array([2, 1, 1, 1], np.int64)), const("cos_shape", np.array([2, 3], np.int64)),
        helper.make_node("Constant", [], ["ints"], value_ints=[1, 2, 3]),
        helper.make_node("Constant", [], ["half"], value_float=0.5),
        helper.make_node("Shape", ["x"], ["shape_tail"], start=1),
        helper.make_node("Gather", ["x", "idx"], ["gathered"], axis=1),
        helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["sliced"]),
        helper.make_node("Reshape", ["x", "shape_0m1"], ["reshaped"]),
        helper.make_node("Unsqueeze", ["x", "unsq_axes"], ["unsqueezed"]),
        helper.make_node("Squeeze", ["unsqueezed"], ["squeezed"]),
        helper.make_node("Transpose", ["x"], ["transposed"]),
        helper.make_node("Cast", ["shape_tail"], ["shape_float"], to=f),
        helper.make_node("Cast", ["x"], ["x_int32"], to=i32),
        helper.make_node("ConstantOfShape", ["cos_shape"], ["sevens"],
                         value=numpy_helper.from_array(np.array([7], np.int64))),
        helper.make_node("Gather", ["x", "zero"], ["row0"], axis=1),
        helper.make_node("Unsqueeze", ["row0", "one_axis"], ["row0_3d"]),
        helper.make_node("Expand", ["row0_3d", "expand_to"], ["expanded"]),
        helper.make_node("Concat", ["x", "gathered", "x"], ["joined"], axis=-2),
        helper.make_node("Flatten", ["x"], ["flat"], axis=0),
        helper.make_node("Identity", ["ints"], ["ints_out"]),
        helper.make_node("Identity", ["half"], ["half_out"]),
    ]
    outs17 = [("shape_tail", i64, 1), ("gathered", f, 3), ("sliced", f, 3), ("reshaped", f, 2),
              ("unsqueezed", f, 5), ("squeezed", f, 3), ("transposed", f, 3), ("shape_float", f, 1),
              ("x_int32", i32, 3), ("sevens", i64, 2), ("expanded", f, 4), ("joined", f, 3), ("flat", f, 2),
              ("ints_out", i64, 1), ("half_out", f, 0)]
    nodes9 = [
        const("idx", np.array([[2, -3]], np.int64)),
        const("shape_m1", np.array([-1, 5], np.int64)),
        helper.make_node("Slice", ["x"], ["sliced"], starts=[1, -100], ends=[1000, -1], axes=[1, 2]),
        helper.make_node("Unsqueeze", ["x"], ["unsqueezed"], axes=[1]),
        helper.make_node("Squeeze", ["unsqueezed"], ["squeezed"], axes=[1]),
        helper.make_node("Gather", ["x", "idx"], ["gathered"], axis=-1),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["zeros"]),
        helper.make_node("Reshape", ["x", "shape_m1"], ["reshaped"]),
        helper.make_node("Transpose", ["x"], ["transposed"], perm=[1, 2, 0]),
        helper.make_node("Cast", ["shape"], ["shape_int32"], to=i32),
    ]
    outs9 = [("sliced", f, 3), ("squeezed", f, 3), ("gathered", f, 4), ("zeros", f, 3),
             ("reshaped", f, 2), ("transposed", f, 3), ("shape_int32", i32, 1)]
    for name, nodes, outs, opset in [("glue_ops_opset17", nodes17, outs17, 17), ("glue_ops_opset9", nodes9, outs9, 9)]:
        graph = helper.make_graph(
            nodes, name, x_info,
            [helper.make_tensor_value_info(n, t, [f"{n}_{k}" for k in range(r)]) for n, t, r in outs])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        save_case(name, model, x)


class BatchFirstBidir(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x):
        return self.lstm(x)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    torch_case("torch_lstm_2layer", torch.nn.LSTM(4, 6, num_layers=2), torch.randn(6, 2, 4),
               ["y", "h_n", "c_n"], {"Shape", "Gather", "Unsqueeze", "Concat", "ConstantOfShape", "Slice", "Squeeze"})
    torch_case("torch_lstm_bidir_stack", BatchFirstBidir(), torch.randn(3, 5, 3),
               ["y", "h_n", "c_n"], {"Shape", "Gather", "Transpose", "Reshape", "Slice", "LSTM"})
    torch_case("torch_gru_2layer", torch.nn.GRU(3, 4, num_layers=2), torch.randn(7, 2, 3),
               ["y", "h_n"], {"Shape", "Gather", "ConstantOfShape", "Squeeze", "GRU"})
    lstm_reverse_case(rng)
    lstm_layout1_glue_case(rng)
    gru_no_linear_before_reset_case(rng)
    glue_ops_cases(rng)


if __name__ == "__main__":
    main()

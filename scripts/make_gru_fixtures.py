#!/usr/bin/env python3
"""Reference fixtures from PyTorch's real ``torch.nn.GRU``, forward and autograd.

Each case writes ``tests/fixtures/torch_gru/<case>.safetensors`` holding:

* the GRU's ``state_dict`` under PyTorch's names (``weight_ih_l{k}``,
  ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``_reverse`` for the
  backward direction);
* ``x`` in the layout ``nn.GRU`` takes; ``h0`` ``[L*D, B, H]`` when the case has an
  initial state; ``lengths`` (int64 ``[B]``) when it has variable lengths;
* ``y`` (zeros past each length, as ``pad_packed_sequence`` pads) and ``h_n``;
* the upstream gradients ``gy`` (same shape as ``y``) and ``gh_n``, and PyTorch's
  autograd gradients of ``L = sum(y*gy) + sum(h_n*gh_n)``: ``grad.<param name>``,
  ``grad.x`` and ``grad.h0``.

Metadata: the constructor's arguments and ``torch_version``. Regenerate with

    python3 -m venv venv && venv/bin/pip install torch safetensors numpy
    venv/bin/python scripts/make_gru_fixtures.py
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "torch_gru")


@dataclass
class Case:
    name: str
    input_size: int
    hidden_size: int
    num_layers: int
    seq_len: int
    batch: int
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False
    init_state: bool = False
    lengths: Optional[list[int]] = None
    seed: int = 0


CASES = [
    Case("one_layer_init_state", 5, 7, 1, 6, 3, init_state=True, seed=11),
    Case("two_layer_bidir_batch_first", 4, 6, 2, 5, 2, bidirectional=True,
         batch_first=True, init_state=True, seed=12),
    Case("no_bias", 6, 4, 1, 3, 2, bias=False, seed=13),
    Case("var_lengths_bidir", 3, 5, 2, 6, 3, bidirectional=True, init_state=True,
         lengths=[2, 6, 4], seed=14),
    Case("single_step", 2, 3, 1, 1, 1, init_state=True, seed=15),
]


def run_case(c: Case) -> dict[str, torch.Tensor]:
    torch.manual_seed(c.seed)
    dirs = 2 if c.bidirectional else 1
    gru = torch.nn.GRU(c.input_size, c.hidden_size, c.num_layers, bias=c.bias,
                       batch_first=c.batch_first, bidirectional=c.bidirectional)
    shape_x = (c.batch, c.seq_len, c.input_size) if c.batch_first else \
        (c.seq_len, c.batch, c.input_size)
    x = torch.randn(*shape_x, requires_grad=True)
    h0 = torch.randn(c.num_layers * dirs, c.batch, c.hidden_size,
                     requires_grad=True) if c.init_state else None
    if c.lengths is not None:
        lengths = torch.tensor(c.lengths, dtype=torch.int64)
        packed = pack_padded_sequence(x, lengths, batch_first=c.batch_first,
                                      enforce_sorted=False)
        y_packed, h_n = gru(packed, h0)
        y, _ = pad_packed_sequence(y_packed, batch_first=c.batch_first,
                                   total_length=c.seq_len)
    else:
        lengths = None
        y, h_n = gru(x, h0)
    gy = torch.randn_like(y)
    gh_n = torch.randn_like(h_n)
    ((y * gy).sum() + (h_n * gh_n).sum()).backward()

    out = {k: v.detach().contiguous().clone() for k, v in gru.state_dict().items()}
    for k, p in gru.named_parameters():
        out[f"grad.{k}"] = p.grad.detach().contiguous()
    out["x"] = x.detach().contiguous()
    out["grad.x"] = x.grad.detach().contiguous()
    if h0 is not None:
        out["h0"] = h0.detach().contiguous()
        out["grad.h0"] = h0.grad.detach().contiguous()
    if lengths is not None:
        out["lengths"] = lengths
    out["y"] = y.detach().contiguous()
    out["h_n"] = h_n.detach().contiguous()
    out["gy"] = gy.contiguous()
    out["gh_n"] = gh_n.contiguous()
    return out


def export_inputs() -> None:
    """Each case's input also as ``<case>.x.npy`` (for the README's example command)."""
    import numpy as np
    from safetensors.numpy import load_file
    for c in CASES:
        path = os.path.join(OUT_DIR, f"{c.name}.safetensors")
        np.save(os.path.join(OUT_DIR, f"{c.name}.x.npy"), load_file(path)["x"])


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    for c in CASES:
        meta = {
            "input_size": str(c.input_size), "hidden_size": str(c.hidden_size),
            "num_layers": str(c.num_layers),
            "bidirectional": str(c.bidirectional).lower(),
            "bias": str(c.bias).lower(), "batch_first": str(c.batch_first).lower(),
            "torch_version": torch.__version__,
        }
        path = os.path.join(OUT_DIR, f"{c.name}.safetensors")
        save_file(run_case(c), path, metadata=meta)
        os.chmod(path, 0o644)
        print(f"{os.path.relpath(path, REPO_ROOT)}: {os.path.getsize(path)} bytes")
    export_inputs()


if __name__ == "__main__":
    main()

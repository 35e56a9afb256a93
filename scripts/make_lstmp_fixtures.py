#!/usr/bin/env python3
"""Reference fixtures from PyTorch's ``torch.nn.LSTM(proj_size=P)``, forward and autograd.

Each case writes ``tests/fixtures/torch_lstmp/<case>.safetensors`` with the module's
``state_dict`` (``weight_hr_l{k}`` included), ``x``, optional ``h0`` ``[L*D, B, P]`` /
``c0`` ``[L*D, B, H]`` and ``lengths``, the outputs ``y``, ``h_n``, ``c_n``, upstream
gradients ``gy``, ``gh_n``, ``gc_n`` and the autograd gradients of
``L = sum(y*gy) + sum(h_n*gh_n) + sum(c_n*gc_n)``: ``grad.<param>``, ``grad.x``,
``grad.h0``, ``grad.c0``; and the input alone as ``<case>.x.npy``. Regenerate with

    python3 -m venv venv && venv/bin/pip install torch safetensors numpy
    venv/bin/python scripts/make_lstmp_fixtures.py
"""

from __future__ import annotations

import os

import numpy as np
import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "torch_lstmp")

# name, I, H, P, layers, T, B, bidirectional, bias, batch_first, init_state, lengths, seed
CASES = [
    ("one_layer_init_state", 5, 7, 3, 1, 6, 3, False, True, False, True, None, 31),
    ("two_layer_bidir_lengths", 4, 6, 2, 2, 5, 3, True, True, False, True, [5, 2, 4], 32),
    ("batch_first_no_bias", 3, 5, 4, 1, 4, 2, False, False, True, False, None, 33),
]


def run_case(name, i, h, p, layers, t, b, bidir, bias, batch_first, init, lengths, seed):
    torch.manual_seed(seed)
    dirs = 2 if bidir else 1
    lstm = torch.nn.LSTM(i, h, layers, bias=bias, batch_first=batch_first,
                         bidirectional=bidir, proj_size=p)
    x = torch.randn(*((b, t, i) if batch_first else (t, b, i)), requires_grad=True)
    state = None
    if init:
        state = (torch.randn(layers * dirs, b, p, requires_grad=True),
                 torch.randn(layers * dirs, b, h, requires_grad=True))
    if lengths is not None:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                      enforce_sorted=False)
        y_packed, (h_n, c_n) = lstm(packed, state)
        y, _ = pad_packed_sequence(y_packed, batch_first=batch_first, total_length=t)
    else:
        y, (h_n, c_n) = lstm(x, state)
    gy, gh, gc = torch.randn_like(y), torch.randn_like(h_n), torch.randn_like(c_n)
    ((y * gy).sum() + (h_n * gh).sum() + (c_n * gc).sum()).backward()
    out = {k: v.detach().contiguous().clone() for k, v in lstm.state_dict().items()}
    out.update({f"grad.{k}": v.grad.detach().contiguous() for k, v in lstm.named_parameters()})
    out.update(x=x.detach().contiguous(), y=y.detach().contiguous(), h_n=h_n.detach().contiguous(),
               c_n=c_n.detach().contiguous(), gy=gy.contiguous(), gh_n=gh.contiguous(),
               gc_n=gc.contiguous())
    out["grad.x"] = x.grad.detach().contiguous()
    if state is not None:
        out.update(h0=state[0].detach().contiguous(), c0=state[1].detach().contiguous())
        out["grad.h0"] = state[0].grad.detach().contiguous()
        out["grad.c0"] = state[1].grad.detach().contiguous()
    if lengths is not None:
        out["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    return out


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    for case in CASES:
        name, bf = case[0], case[9]
        tensors = run_case(*case)
        path = os.path.join(OUT_DIR, f"{name}.safetensors")
        save_file(tensors, path, metadata={"batch_first": str(bf).lower(),
                                           "torch_version": torch.__version__})
        os.chmod(path, 0o644)
        np.save(os.path.join(OUT_DIR, f"{name}.x.npy"), tensors["x"].numpy())
        print(f"{os.path.relpath(path, REPO_ROOT)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()

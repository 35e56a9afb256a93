#!/usr/bin/env python3
"""Generate reference fixtures from PyTorch's real ``torch.nn.LSTM``.

Each case writes one safetensors file to ``tests/fixtures/torch/<case>.safetensors``
(relative to the repository root) containing:

* the LSTM's own ``state_dict`` tensors under PyTorch's names
  (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, and
  the same with a ``_reverse`` suffix for the backward direction; no bias tensors
  when ``bias=False``);
* ``x``: the input exactly as passed to ``nn.LSTM`` ([T,B,I], or [B,T,I] when
  ``batch_first``);
* ``h0``, ``c0`` ([L*D,B,H]) when the case uses initial states;
* ``lengths`` (int64 [B]) when the case uses variable lengths;
* ``y``: the output sequence in the same layout as ``x`` with last dim D*H (for
  variable lengths: the padded output of ``pad_packed_sequence`` with
  ``total_length=T``, i.e. zeros past each sequence's length);
* ``h_n``, ``c_n`` ([L*D,B,H]).

The safetensors metadata (strings only) records ``input_size``, ``hidden_size``,
``num_layers``, ``bidirectional``, ``bias``, ``batch_first`` and ``torch_version``.

Everything is float32 and runs on the CPU; every case seeds ``torch.manual_seed``
so the output is deterministic for a given torch version.

Regenerate with:

    pip install torch safetensors numpy && python3 scripts/make_torch_fixtures.py
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Optional

import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "torch")


@dataclass
class Case:
    name: str
    input_size: int
    hidden_size: int
    num_layers: int
    seq_len: int  # T
    batch: int  # B
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False
    init_state: bool = False
    lengths: Optional[list[int]] = None  # variable lengths, one per batch element
    seed: int = 0


CASES = [
    Case("one_layer_init_state", input_size=5, hidden_size=7, num_layers=1,
         seq_len=6, batch=3, init_state=True, seed=1),
    Case("two_layer_bidir", input_size=4, hidden_size=6, num_layers=2,
         seq_len=5, batch=2, bidirectional=True, init_state=True, seed=2),
    Case("three_layer_bidir_batch_first", input_size=3, hidden_size=5, num_layers=3,
         seq_len=4, batch=2, bidirectional=True, batch_first=True, seed=3),
    Case("no_bias", input_size=6, hidden_size=4, num_layers=1,
         seq_len=3, batch=2, bias=False, seed=4),
    Case("var_lengths", input_size=4, hidden_size=5, num_layers=1,
         seq_len=6, batch=4, init_state=True, lengths=[6, 3, 1, 4], seed=5),
    Case("var_lengths_bidir", input_size=3, hidden_size=4, num_layers=2,
         seq_len=5, batch=3, bidirectional=True, init_state=True,
         lengths=[2, 5, 3], seed=6),
    Case("single_step", input_size=2, hidden_size=3, num_layers=1,
         seq_len=1, batch=1, init_state=True, seed=7),
]


def ensure_nonzero_(t: torch.Tensor, eps: float = 1e-3) -> None:
    """Replace any exact zeros in ``t`` (in place) by a small nonzero value.

    PyTorch's default init is U(-1/sqrt(H), 1/sqrt(H)), so an exact zero is
    practically impossible, but the fixtures promise that no parameter is zero
    (a zero would hide e.g. a missing bias or a transposed weight).
    """
    with torch.no_grad():
        t[t == 0] = eps


def canonicalize_header(path: str) -> None:
    """Rewrite a safetensors file's JSON header with sorted keys.

    ``safetensors`` stores the metadata dict in a hash map, so its key order in
    the header (and hence the file's bytes) changes from run to run. Sorting the
    header keys makes regenerated fixtures byte-identical. Tensor data and
    offsets are untouched; only the header is re-serialised (padded with spaces
    to a multiple of 8 bytes, as the format allows).
    """
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    data = raw[8 + header_len:]
    new_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    new_header += b" " * (-len(new_header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(new_header)))
        f.write(new_header)
        f.write(data)


def flag(b: bool) -> str:
    return "true" if b else "false"


def run_case(case: Case) -> dict[str, torch.Tensor]:
    torch.manual_seed(case.seed)
    num_dirs = 2 if case.bidirectional else 1

    lstm = torch.nn.LSTM(
        input_size=case.input_size,
        hidden_size=case.hidden_size,
        num_layers=case.num_layers,
        bias=case.bias,
        batch_first=case.batch_first,
        bidirectional=case.bidirectional,
    ).float()
    lstm.eval()  # no dropout (default 0 anyway)
    for p in lstm.parameters():
        ensure_nonzero_(p)

    # Input, in the layout nn.LSTM expects for this case.
    if case.batch_first:
        x = torch.randn(case.batch, case.seq_len, case.input_size)
    else:
        x = torch.randn(case.seq_len, case.batch, case.input_size)

    state = None
    if case.init_state:
        shape = (case.num_layers * num_dirs, case.batch, case.hidden_size)
        h0 = torch.randn(*shape)
        c0 = torch.randn(*shape)
        state = (h0, c0)

    with torch.no_grad():
        if case.lengths is not None:
            assert len(case.lengths) == case.batch
            assert max(case.lengths) <= case.seq_len
            lengths = torch.tensor(case.lengths, dtype=torch.int64)
            # enforce_sorted=False: lengths are deliberately unsorted. PyTorch
            # sorts internally and unsorts h_n/c_n and the padded output, so
            # everything below is in the original batch order.
            packed = pack_padded_sequence(
                x, lengths, batch_first=case.batch_first, enforce_sorted=False)
            y_packed, (h_n, c_n) = lstm(packed, state)
            y, out_lengths = pad_packed_sequence(
                y_packed, batch_first=case.batch_first, total_length=case.seq_len)
            assert torch.equal(out_lengths, lengths)
        else:
            lengths = None
            y, (h_n, c_n) = lstm(x, state)

    tensors: dict[str, torch.Tensor] = {}
    for name, p in lstm.state_dict().items():
        tensors[name] = p.detach().float().contiguous().clone()
    tensors["x"] = x.contiguous()
    if state is not None:
        tensors["h0"] = state[0].contiguous()
        tensors["c0"] = state[1].contiguous()
    if lengths is not None:
        tensors["lengths"] = lengths.contiguous()
    tensors["y"] = y.float().contiguous()
    tensors["h_n"] = h_n.float().contiguous()
    tensors["c_n"] = c_n.float().contiguous()
    return tensors


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    for case in CASES:
        tensors = run_case(case)
        metadata = {
            "input_size": str(case.input_size),
            "hidden_size": str(case.hidden_size),
            "num_layers": str(case.num_layers),
            "bidirectional": flag(case.bidirectional),
            "bias": flag(case.bias),
            "batch_first": flag(case.batch_first),
            "torch_version": torch.__version__,
        }
        path = os.path.join(OUT_DIR, f"{case.name}.safetensors")
        save_file(tensors, path, metadata=metadata)
        canonicalize_header(path)
        os.chmod(path, 0o644)  # safetensors creates files 0600
        rel = os.path.relpath(path, REPO_ROOT)
        max_y = tensors["y"].abs().max().item()
        print(f"{rel}: max|y| = {max_y:.6f} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()

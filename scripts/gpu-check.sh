#!/usr/bin/env bash
# The real-GPU check (issue 9): on a Linux machine with an NVIDIA GPU, run the prebuilt
# lstm-bench (GPU path against the CPU path: medians and max |Δ|), the GPU-vs-CPU checks
# of `lstm-wgpu compare` on awkward shapes and every peephole mode, two epochs of the
# seed model trained on the GPU, and, where PyTorch with CUDA is installed,
# torch.nn.LSTM (cuDNN, fp32) on the same shapes and the same weights and inputs, with
# one table: ours ms, cuDNN ms, ratio, max |Δ| of the outputs. Finishes in a few minutes.
#
#   scripts/gpu-check.sh [BIN_DIR]      BIN_DIR holds lstm-bench and lstm-wgpu (default target/release)
#
# Vulkan needs the loader (libvulkan1) and the NVIDIA ICD: set VK_DRIVER_FILES to the
# driver's JSON when the loader does not find it (the device machine's README says where).
# scripts/device-prep.sh builds and strips the binaries and fetches the loader for such
# a machine, and prints the command to run there.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release}"
# Names lstm-bench knows (scripts/bench_shapes.py; an unknown name stops lstm-bench).
SHAPES="${GPU_CHECK_SHAPES:-S1,S2,S3,S4,DB-H512-B16-T25,DB-H512-B64-T25,DB-H1024-B16-T25,DB-H256-B16-T150,DB-H512-B1-T25,DB-H1024-B1-T25}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "== adapter"
"$BIN/lstm-wgpu" adapters
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# Not --gpu-only: the CPU path runs beside it, so every row also says how far the GPU's
# outputs are from the CPU's (max|Δ|) on this GPU's kernels, never run on one before.
echo "== lstm-bench (GPU path and CPU path)"
"$BIN/lstm-bench" --shapes "$SHAPES" --json "$WORK/ours.json"

echo "== GPU vs CPU: lstm-wgpu compare on awkward shapes, every peephole mode"
for args in "--seq 1 --batch 1 --input 3 --hidden 5" \
    "--seq 33 --batch 7 --input 13 --hidden 67 --layers 2 --bidirectional --peephole diagonal" \
    "--seq 20 --batch 130 --input 28 --hidden 256 --peephole full" \
    "--seq 64 --batch 32 --input 256 --hidden 256 --layers 3 --bidirectional"; do
    echo "-- $args"
    "$BIN/lstm-wgpu" compare $args | grep -E "^(GPU forward|max)"
done

echo "== the seed model, two epochs trained on this GPU (then GPU vs CPU logits)"
"$BIN/lstm-wgpu" train --device gpu --epochs 2 --out "$WORK/train" | tail -4

# Before/after of the hardware-only changes, on this GPU in this run (BENCHMARKS §23–24):
# the split-K step with its lanes summed by subgroup shuffles or in workgroup memory, and
# the seed model's training step with its weight gradients split over T·B or not.
echo "== A/B: subgroup shuffles (B = 1 shapes), off then on"
B1="S1,DB-H512-B1-T25,DB-H1024-B1-T25"
LSTM_SUBGROUPS=0 "$BIN/lstm-bench" --gpu-only --no-train --no-stream --no-gru --no-lstmp --no-f16 --no-probes --shapes "$B1"
"$BIN/lstm-bench" --gpu-only --no-train --no-stream --no-gru --no-lstmp --no-f16 --no-probes --shapes "$B1"
echo "== A/B: split-K weight gradients (training step), off then on"
for flag in --no-split-k ""; do
    "$BIN/lstm-bench" --gpu-only --no-stream --no-gru --no-lstmp --no-f16 --no-probes --shapes Q1 $flag | grep -E "weight gradients|training step"
done

# Whether the tiled (hardware) forms beat the software adapters' written-out ones on this
# GPU, as the automatic choice assumes (BENCHMARKS.md §18): the same shapes, both ways.
echo "== A/B: kernel forms, software (written out) then the automatic choice"
AB="S1,S3,DB-H512-B16-T25,DB-H1024-B1-T25"
for forms in software auto; do
    echo "-- --kernels $forms"
    "$BIN/lstm-bench" --gpu-only --no-train --no-stream --no-gru --no-lstmp --no-f16 --no-probes \
        --kernels "$forms" --shapes "$AB" | grep -E "^(S[0-9]|DB-)"
done

if ! command -v python3 >/dev/null; then
    echo "== no python3 here: no cuDNN comparison (lstm-bench's table above has our times)"
    exit 0
fi
echo "== torch.nn.LSTM (cuDNN)"
python3 scripts/gpu_check_torch.py "$WORK/torch" ${SHAPES//,/ } | tee "$WORK/torch.txt" || true

echo "== same weights and input through lstm-wgpu forward (GPU)"
for dir in "$WORK"/torch/*/; do
    [ -f "$dir/weights.safetensors" ] || continue
    "$BIN/lstm-wgpu" forward --weights "$dir/weights.safetensors" --format torch \
        --input "$dir/x.npy" --device gpu --out "$dir/ours" >/dev/null
done

python3 - "$WORK" <<'PY'
import json, os, sys
work = sys.argv[1]
ours = {r["shape"]: r for r in json.load(open(os.path.join(work, "ours.json")))["rows"]}
torch_ms = {}
if os.path.exists(os.path.join(work, "torch.txt")):
    for line in open(os.path.join(work, "torch.txt")):
        name, ms = line.split()
        torch_ms[name] = None if ms == "n/a" else float(ms)
def delta(name):
    d = os.path.join(work, "torch", name)
    try:
        import numpy as np
        return float(np.abs(np.load(os.path.join(d, "ours", "y.npy")) - np.load(os.path.join(d, "y_torch.npy"))).max())
    except Exception:
        return None
def fmt(v, spec):
    width = int(spec.split(".")[0])
    return "-".rjust(width) if v is None else format(v, spec)
print(f"{'shape':<18} {'ours ms':>9} {'cuDNN ms':>9} {'ours/cuDNN':>10} {'max|Δ|':>9}")
for name, r in ours.items():
    t = torch_ms.get(name)
    ratio = r["gpu_ms"] / t if (t and r.get("gpu_ms")) else None
    print(f"{name:<18} {fmt(r.get('gpu_ms'), '9.3f')} {fmt(t, '9.3f')} {fmt(ratio, '10.2f')} {fmt(delta(name), '9.1e')}")
print("ours: lstm-bench GPU path, wall time per forward incl. upload and readback (median); cuDNN: CUDA events around nn.LSTM forward (median); max|Δ|: same weights and input, our y vs torch's y")
PY

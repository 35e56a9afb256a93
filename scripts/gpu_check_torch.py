#!/usr/bin/env python3
"""The PyTorch side of scripts/gpu-check.sh: for each shape, seeded weights and input,
torch.nn.LSTM on CUDA (cuDNN, fp32, TF32 off) timed by CUDA events (median of 20 after
5 warm-ups), and its output saved so the shell script can run lstm-wgpu on the same
files and compare.

  python3 scripts/gpu_check_torch.py OUT_DIR S1 S2 ...   (shape names as in lstm-bench)

Writes OUT_DIR/<shape>/{weights.safetensors, x.npy, y_torch.npy} and prints one line
per shape: "<shape> <cudnn_ms>". Without torch or CUDA it prints "<shape> n/a" and
writes nothing for that shape.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_shapes import SHAPES  # noqa: E402  (lstm-bench's shapes, one list)


def timed(lstm, x, device):
    """Milliseconds of one forward: CUDA events on the GPU, wall time on a CPU dry run."""
    import time
    import torch
    if device != "cuda":
        t0 = time.perf_counter()
        lstm(x)
        return (time.perf_counter() - t0) * 1e3
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    lstm(x)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def main():
    out, names = sys.argv[1], sys.argv[2:]
    try:
        import numpy as np
        import torch
        from safetensors.torch import save_file
        device = os.environ.get("GPU_CHECK_TORCH_DEVICE", "cuda")  # "cpu": a dry run of this script
        assert device != "cuda" or torch.cuda.is_available(), "no CUDA device"
    except Exception as e:  # no torch, no CUDA: ours is still measured
        print(f"# PyTorch/CUDA unavailable ({type(e).__name__}: {e})", file=sys.stderr)
        for n in names:
            print(n, "n/a")
        return
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for n in names:
        if n not in SHAPES:
            print(n, "n/a")
            continue
        t, b, i, h, layers, bidir = SHAPES[n]
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(i, h, num_layers=layers, bidirectional=bidir).to(device).eval()
        x = torch.rand(t, b, i, device=device) * 2 - 1
        with torch.inference_mode():
            for _ in range(5):
                y, _ = lstm(x)
            times = [timed(lstm, x, device) for _ in range(20)]
        d = os.path.join(out, n)
        os.makedirs(d, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in lstm.state_dict().items()}, os.path.join(d, "weights.safetensors"))
        np.save(os.path.join(d, "x.npy"), x.cpu().numpy())
        np.save(os.path.join(d, "y_torch.npy"), y.cpu().numpy())
        print(n, f"{sorted(times)[len(times) // 2]:.4f}")


if __name__ == "__main__":
    main()

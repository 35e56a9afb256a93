#!/usr/bin/env python3
"""The CPU path beside PyTorch and ONNX Runtime, in one run on one machine (issue 14).

  /work/venv/bin/python scripts/cpu_peers.py [--shapes S1,S2,...] [--threads 1,2]
                                             [--repeats 7] [--rounds 3] [--no-train] [--json OUT]

For each thread count it runs, one after the other so that they never compete:
  - the crate: `target/release/lstm-bench --cpu-only --threads N --json` (build it first:
    `cargo build --release --bin lstm-bench --bin lstm-wgpu`), its forward rows and its
    training-step row (the seed's LSTM(256)+Dense(10), B=128, forward+backward+Adam);
  - PyTorch: `torch.nn.LSTM` in `inference_mode`, `torch.set_num_threads(N)`, seeded;
  - ONNX Runtime: the same seeded `nn.LSTM` exported by `torch.onnx.export`, a session
    with `intra_op_num_threads = N`;
  - the training step in PyTorch (same model, Adam, clip 1), and, unless --no-train,
    an epoch of the bundled 8,000 digits in the crate (`lstm-wgpu train --epochs 1`),
    PyTorch and Keras (`KERAS_BACKEND=torch`, when keras is installed).
The crate and the peers alternate for --rounds rounds (a slow spell of a shared machine
then falls on both). It prints one table: milliseconds (the median of the rounds'
medians) and crate / best-peer ratios, and checks
that ORT and the crate (`lstm-wgpu forward --device cpu` on PyTorch's state dict) give
PyTorch's outputs (max |Δ|).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_shapes import SHAPES  # noqa: E402  (lstm-bench's shapes, one list)


def median_ms(f, repeats):
    f()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def crate_bench(shapes, threads, repeats, train):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [os.path.join(BIN, "lstm-bench"), "--cpu-only", "--no-gru", "--no-lstmp", "--no-stream",
               "--threads", str(threads), "--repeats", str(repeats), "--shapes", ",".join(shapes),
               "--json", out.name] + ([] if train else ["--no-train"])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        doc = json.load(open(out.name))
    rows = {r["shape"]: r["cpu_ms"] for r in doc["rows"]}
    step = (doc.get("training_step") or {}).get("cpu_ms")
    return rows, step


def torch_and_ort(name, threads, repeats, work, check=True):
    """(torch ms, ORT ms, max |ORT − torch|, max |crate − torch|) for one shape (the
    differences None without `check`)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from safetensors.torch import save_file
    t, b, i, h, layers, bidir = SHAPES[name]
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(i, h, num_layers=layers, bidirectional=bidir).eval()
    x = torch.rand(t, b, i) * 2 - 1
    with torch.inference_mode():
        y = lstm(x)[0].numpy()
        torch_ms = median_ms(lambda: lstm(x), repeats)
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    onnx_path = os.path.join(d, "lstm.onnx")
    if not os.path.exists(onnx_path):
        torch.onnx.export(lstm, (x,), onnx_path, input_names=["x"], output_names=["y", "h_n", "c_n"],
                          opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    ort_y = sess.run(["y"], feed)[0]
    ort_ms = median_ms(lambda: sess.run(None, feed), repeats)
    if not check:
        return torch_ms, ort_ms, None, None
    save_file({k: v.contiguous() for k, v in lstm.state_dict().items()}, os.path.join(d, "w.safetensors"))
    np.save(os.path.join(d, "x.npy"), x.numpy())
    subprocess.run([os.path.join(BIN, "lstm-wgpu"), "forward", "--device", "cpu", "--format", "torch",
                    "--prefix", "", "--weights", os.path.join(d, "w.safetensors"), "--input",
                    os.path.join(d, "x.npy"), "--out", os.path.join(d, "ours")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = np.load(os.path.join(d, "ours", "y.npy"))
    return torch_ms, ort_ms, float(np.abs(ort_y - y).max()), float(np.abs(ours - y).max())


def torch_train_step(threads, repeats):
    """PyTorch's training step of the seed model: LSTM(28→256) + Linear(256→10), B=128, T=28."""
    import torch
    torch.manual_seed(0)
    lstm, fc = torch.nn.LSTM(28, 256, batch_first=True), torch.nn.Linear(256, 10)
    params = list(lstm.parameters()) + list(fc.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    x, labels = torch.rand(128, 28, 28), torch.randint(0, 10, (128,))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(fc(lstm(x)[0][:, -1]), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return median_ms(step, repeats)


def epochs(threads):
    """Seconds of one epoch of 8,000 digits: crate (second epoch of 2), PyTorch (63 steps), Keras."""
    env = dict(os.environ, LSTM_CPU_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as out:
        log = subprocess.run([os.path.join(BIN, "lstm-wgpu"), "train", "--device", "cpu", "--epochs", "2",
                              "--out", out], env=env, check=True, capture_output=True, text=True).stdout
    crate = [float(s) for s in re.findall(r"([\d.]+) s/epoch", log)][-1]
    torch_s = torch_train_step(threads, 3) * 63 / 1e3
    keras_s = None
    try:
        code = ("import os,time,numpy as np,keras;"
                "m=keras.Sequential([keras.Input((28,28)),keras.layers.LSTM(256),keras.layers.Dense(10)]);"
                "m.compile('adam',keras.losses.SparseCategoricalCrossentropy(from_logits=True));"
                "x=np.random.rand(8000,28,28).astype('float32');y=np.random.randint(0,10,8000);"
                "m.fit(x,y,batch_size=128,epochs=1,verbose=0);t=time.perf_counter();"
                "m.fit(x,y,batch_size=128,epochs=1,verbose=0);print(time.perf_counter()-t)")
        kenv = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS=str(threads))
        keras_s = float(subprocess.run([sys.executable, "-c", code], env=kenv, check=True,
                                       capture_output=True, text=True).stdout.split()[-1])
    except Exception as e:  # Keras missing: the row says so
        print(f"# keras epoch skipped: {type(e).__name__}", file=sys.stderr)
    return crate, torch_s, keras_s


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch
    import onnxruntime
    print(f"# PyTorch {torch.__version__}, ONNX Runtime {onnxruntime.__version__}, {os.cpu_count()} CPUs")
    shapes, result = a.shapes.split(","), {}
    work = tempfile.mkdtemp(prefix="cpu-peers-")
    for n in map(int, a.threads.split(",")):
        torch.set_num_threads(n)
        # Rounds alternate the crate and the peers, so that a slow spell of this shared
        # machine falls on both; each time is the median over the rounds' medians.
        runs = {s: [] for s in shapes}
        steps, pt_steps, diffs = [], [], {}
        for r in range(a.rounds):
            crate, crate_step = crate_bench(shapes, n, a.repeats, not a.no_train)
            steps.append(crate_step)
            for s in shapes:
                pt, ort_ms, d_ort, d_ours = torch_and_ort(s, n, a.repeats, work, check=r == 0)
                runs[s].append((crate[s], pt, ort_ms))
                diffs.setdefault(s, (d_ort, d_ours))
            if not a.no_train:
                pt_steps.append(torch_train_step(n, a.repeats))
        print(f"\n## {n} thread(s): ms, medians of {a.repeats} runs, median of {a.rounds} alternated rounds; "
              "ratio = crate / best of PyTorch and ORT")
        print(f"{'shape':<18}{'crate':>10}{'PyTorch':>10}{'ORT':>10}{'ratio':>8}{'|ORT-pt|':>10}{'|crate-pt|':>11}")
        for s in shapes:
            c, pt, ort_ms = (statistics.median(v) for v in zip(*runs[s]))
            (d_ort, d_ours), ratio = diffs[s], c / min(pt, ort_ms)
            result[f"{s}/{n}"] = dict(crate=c, torch=pt, ort=ort_ms, ratio=ratio, d_ort=d_ort, d_crate=d_ours,
                                      rounds=runs[s])
            print(f"{s:<18}{c:>10.2f}{pt:>10.2f}{ort_ms:>10.2f}{ratio:>8.2f}{d_ort:>10.1e}{d_ours:>11.1e}")
        if not a.no_train:
            crate_step = statistics.median(steps) if None not in steps else None
            pt_step = statistics.median(pt_steps)
            crate_epoch, pt_epoch, keras_epoch = epochs(n)
            result[f"train/{n}"] = dict(crate_step=crate_step, torch_step=pt_step, crate_epoch=crate_epoch,
                                        torch_epoch=pt_epoch, keras_epoch=keras_epoch)
            print(f"train step (B=128 T=28 H=256): crate {fmt(crate_step)} ms, PyTorch {pt_step:.2f} ms, "
                  f"ratio {fmt(crate_step / pt_step if crate_step else None)}")
            print(f"epoch (8,000 digits): crate {crate_epoch:.2f} s, PyTorch {pt_epoch:.2f} s (63 steps), "
                  f"Keras {fmt(keras_epoch)} s")
    if a.json:
        json.dump(result, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()

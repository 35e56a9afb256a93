#!/usr/bin/env python3
"""Seeds the fuzz corpora (fuzz/corpus/<target>/) with small real files: the first
digits of the bundled MNIST as plain and gzip IDX, the test fixtures' .npy,
safetensors and .onnx files, and a tiny checkpoint written by `lstm-wgpu train`. Run from the
repository root after `cargo build --release`."""
import gzip
import os
import shutil
import struct
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def idx_seeds():
    out = os.path.join(CORPUS, "idx")
    os.makedirs(out, exist_ok=True)
    images = gzip.open(os.path.join(ROOT, "data/mnist10k/images-idx3-ubyte.gz")).read()
    labels = gzip.open(os.path.join(ROOT, "data/mnist10k/labels-idx1-ubyte.gz")).read()
    small_images = struct.pack(">IIII", 0x803, 3, 28, 28) + images[16:16 + 3 * 784]
    small_labels = struct.pack(">II", 0x801, 3) + labels[8:11]
    for name, data in [("images3.idx", small_images), ("labels3.idx", small_labels)]:
        open(os.path.join(out, name), "wb").write(data)
        open(os.path.join(out, name + ".gz"), "wb").write(gzip.compress(data))


def copy_fixtures(ext, target, limit=20_000):
    out = os.path.join(CORPUS, target)
    os.makedirs(out, exist_ok=True)
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    for dirpath, _, files in os.walk(fixtures):
        for f in files:
            path = os.path.join(dirpath, f)
            if f.endswith(ext) and os.path.getsize(path) <= limit:
                rel = os.path.relpath(path, fixtures).replace(os.sep, "_")
                shutil.copy(path, os.path.join(out, rel))


def checkpoint_seed():
    out = os.path.join(CORPUS, "checkpoint")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([os.path.join(ROOT, "target/release/lstm-wgpu"), "train", "--epochs", "1",
                        "--hidden", "4", "--train-size", "64", "--device", "cpu", "--out", d],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copy(os.path.join(d, "mnist_lstm.safetensors"), os.path.join(out, "h4.safetensors"))


if __name__ == "__main__":
    idx_seeds()
    copy_fixtures(".npy", "npy")
    copy_fixtures(".safetensors", "state_dict")
    copy_fixtures(".onnx", "onnx")
    checkpoint_seed()

"""lstm-bench's named shapes (src/bench/shapes.rs: standard_shapes), for the scripts
that run peers on the same shapes (gpu_check_torch.py, cpu_peers.py). Keep in step
with the Rust list; tests/scripts.rs checks that every name here is one lstm-bench knows.

name: (T, B, I, H, layers, bidirectional)
"""
SHAPES = {
    "S1": (128, 1, 256, 256, 1, False),
    "S2": (128, 64, 512, 512, 1, False),
    "S3": (28, 128, 28, 256, 1, False),
    "S4": (64, 32, 256, 256, 3, True),
}
# DeepBench (H, B, T), I = H.
for _h, _b, _t in [(512, 16, 25), (512, 64, 25), (1024, 16, 25), (256, 16, 150), (512, 1, 25), (1024, 1, 25)]:
    SHAPES[f"DB-H{_h}-B{_b}-T{_t}"] = (_t, _b, _h, _h, 1, False)

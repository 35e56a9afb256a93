#!/usr/bin/env python3
"""Before/after of the CPU path: lstm-bench binaries alternated, one machine, one run.

  python3 scripts/bench_ab.py THREADS SHAPES ROUNDS BIN_A BIN_B [BIN_C ...]

e.g. `python3 scripts/bench_ab.py 2 S1,S3 6 /tmp/lstm-bench-before target/release/lstm-bench`
(build the "before" binary from a worktree of the older commit with its own
CARGO_TARGET_DIR). Each round runs every binary once (`--cpu-only --threads THREADS
--repeats 11`, forward rows only), so a slow spell of a shared machine falls on all of
them. Prints, per shape, each binary's median over the rounds of its medians, its ratio
to the first binary's, and the range.
"""
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run(binary, threads, shapes):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [binary, "--cpu-only", "--threads", threads, "--repeats", "11", "--shapes", shapes,
               "--no-gru", "--no-lstmp", "--no-stream", "--no-train", "--no-f16", "--json", out.name]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return {r["shape"]: r["cpu_ms"] for r in json.load(open(out.name))["rows"]}


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    threads, shapes, rounds, binaries = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    times = collections.defaultdict(list)
    for _ in range(rounds):
        for b in binaries:
            for shape, ms in run(b, threads, shapes).items():
                times[(shape, b)].append(ms)
    for shape in shapes.split(","):
        first = statistics.median(times[(shape, binaries[0])])
        cells = []
        for b in binaries:
            t = times[(shape, b)]
            m = statistics.median(t)
            cells.append(f"{os.path.basename(b)} {m:8.3f} ({m / first:.3f}) [{min(t):.3f}-{max(t):.3f}]")
        print(f"{shape:18} " + "  ".join(cells))


if __name__ == "__main__":
    main()

"""Peak memory of `kit.cv` (one fold, one epoch) on a synthetic competition, and again with twice the data.

Prediction and validation stream the memory-mapped cache batch by batch, so the memory a run allocates
(anonymous RSS: what cannot be dropped, unlike the cache's file pages that the kernel pages in and out)
should stay flat when the data doubles. Printed side by side from one run:

    python bench/memory.py                 # 20,000 and 40,000 images, 64 px, test_resnet, batch 64
    python bench/memory.py --images 5000 --img-size 96

Total RSS is shown too: it includes the cache's file-backed pages the process touched, which grow with the
data but are reclaimable page cache, not allocations.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_competition(root: Path, n: int, size: int, seed: int = 0) -> Path:
    """`n` random-texture JPEGs of `size` px in 5 classes (train.csv `id,label`, no test set)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8)  # reused tiles keep generation fast
    for i in range(n):
        Image.fromarray(np.roll(base[i % 64], i % size, axis=1)).save(root / "images" / f"s{i:06d}.jpg", quality=80)
    pd.DataFrame({"id": [f"s{i:06d}" for i in range(n)], "label": rng.choice(list("abcde"), n)}).to_csv(
        root / "train.csv", index=False)
    return root


def status(pid: int) -> dict[str, int]:
    """kB values of /proc/<pid>/status (VmRSS, RssAnon, RssFile, ...)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[key] = int(rest.split()[0])
    return values


def peak_memory(argv: list[str]) -> tuple[float, float, float]:
    """(seconds, peak RSS MiB, peak anonymous RSS MiB) of a subprocess, polled every 20 ms."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kit.cv", *argv], env=env, cwd=ROOT)
    peaks = {"VmRSS": 0, "RssAnon": 0}

    def poll():
        while proc.poll() is None:
            try:
                now = status(proc.pid)
            except OSError:
                break
            for key in peaks:
                peaks[key] = max(peaks[key], now.get(key, 0))
            time.sleep(0.02)
    started = time.perf_counter()
    watcher = threading.Thread(target=poll)
    watcher.start()
    if proc.wait() != 0:
        raise SystemExit(f"kit.cv failed: {argv}")
    watcher.join()
    return time.perf_counter() - started, peaks["VmRSS"] / 1024, peaks["RssAnon"] / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20000, help="the first size; the second is twice it")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="kit-bench-memory-"))
    rows = []
    for n in (args.images, 2 * args.images):
        data = make_competition(work / f"synthetic{n}", n, args.img_size)
        cache = work / "cache"
        flags = ["--data", str(data), "--model", args.model, "--img-size", str(args.img_size), "--epochs", "1",
                 "--folds", "5", "--fold", "0", "--batch-size", str(args.batch_size), "--quiet", "--no-channels-last",
                 "--cache-dir", str(cache), "--oof-dir", str(work / "oof"), "--folds-dir", str(work / "folds"),
                 "--name", f"mem{n}"]
        seconds, rss, anon = peak_memory(flags)
        cache_mib = sum(p.stat().st_size for p in cache.glob(f"*-{n}.npy")) / 2**20
        rows.append((n, cache_mib, rss, anon, seconds))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
               platform.processor())
    print(f"{cpu}; {args.model} {args.img_size}px, batch {args.batch_size}, fold 0 of 5, one epoch (train + "
          f"validate {args.images // 5:,} / {2 * args.images // 5:,} rows + predict OOF)")
    print("| images | cache file MiB | peak RSS MiB | peak anonymous RSS MiB | seconds |")
    print("|---:|---:|---:|---:|---:|")
    for n, cache_mib, rss, anon, seconds in rows:
        print(f"| {n:,} | {cache_mib:.0f} | {rss:.0f} | {anon:.0f} | {seconds:.0f} |")
    (n1, c1, r1, a1, _), (n2, c2, r2, a2, _) = rows
    print(f"\ndata x{n2 / n1:.0f}: cache x{c2 / c1:.2f}, peak anonymous RSS x{a2 / a1:.2f} "
          f"(+{a2 - a1:.0f} MiB; the validation fold alone is {c2 / 5 - c1 / 5:.0f} MiB more), "
          f"peak RSS x{r2 / r1:.2f}")


if __name__ == "__main__":
    main()

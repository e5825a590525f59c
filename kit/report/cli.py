"""python -m kit.report NAME [NAME ...] | --all | --study NAME | --leaderboard

Writes `reports/<NAME>/index.html` for runs and blends, `reports/study-<NAME>/index.html` for an Optuna
study of `kit.tune hparams`, `reports/leaderboard/index.html` for every run and blend: one self-contained
page each (figures embedded, opens offline from disk) with the PNGs beside it. A report is a view of the
files under oof/ and tune/: it is rewritten on every call (no --overwrite needed), nothing else is touched.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kit.runs import finished_runs, is_complete


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help="runs / blends under --oof-dir")
    parser.add_argument("--all", action="store_true", help="every finished run and blend")
    parser.add_argument("--study", nargs="+", default=[], metavar="NAME",
                        help="Optuna studies of kit.tune hparams")
    parser.add_argument("--leaderboard", action="store_true", help="every run and blend's OOF scores as a chart")
    parser.add_argument("--solution", default=None,
                        help="the competition's solution.csv: also report on the test rows (of every run named)")
    parser.add_argument("--gallery", type=int, default=16,
                        help="images in the worst-predictions gallery (0: none)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage (default: kit.tune hparams' own: journal:<tune-dir>/<study>.log)")
    parser.add_argument("--oof-dir", default="oof")
    parser.add_argument("--tune-dir", default="tune")
    parser.add_argument("--reports-dir", default="reports")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.names or args.all or args.study or args.leaderboard):
        build_parser().error("name a run or blend, or pass --all, --study NAME or --leaderboard")
    if args.gallery < 0:
        build_parser().error("--gallery must be 0 (no gallery) or more")
    # matplotlib and friends only once the command line is valid (torch only when a run is reported)
    from kit.report.inputs import ReportError, load_inputs
    from kit.report.leaderboard import write_leaderboard_report
    from kit.report.run_page import write_run_report
    from kit.report.study import load_study, write_study_report

    oof_dir = Path(args.oof_dir)
    run_dirs = finished_runs(oof_dir) if args.all else [oof_dir / name for name in args.names]
    try:
        missing = [str(d) for d in run_dirs if not is_complete(d)]
        if missing:
            raise ReportError(f"not a finished run or blend (needs config.json and oof.csv): {', '.join(missing)}")
        if args.solution is not None and not Path(args.solution).exists():
            raise ReportError(f"solution file {args.solution} does not exist")
        if args.all and not run_dirs and not (args.study or args.leaderboard):
            raise ReportError(f"no finished runs under {oof_dir}/")
        # everything is read and checked before the first figure is drawn
        inputs = [load_inputs(d, args.tune_dir, args.solution) for d in run_dirs]
        for name in args.study:
            load_study(name, args.storage, args.tune_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    written = [write_run_report(i, args.reports_dir, args.gallery) for i in inputs]
    written += [write_study_report(name, args.reports_dir, args.tune_dir, args.storage) for name in args.study]
    if args.leaderboard:
        written.append(write_leaderboard_report(oof_dir, args.tune_dir, args.reports_dir))
    for path in written:
        print(f"wrote {path}")
    return 0

"""`python -m kit.tune`: decision thresholds (cheap, default) or hyperparameter search.

    python -m kit.tune                                   # thresholds for every finished run/blend under oof/
    python -m kit.tune thresholds --run NAME [NAME ...] [--metric macro_f1] [--oof-dir oof] [--tune-dir tune]
    python -m kit.tune thresholds --metric samples_f2   # Planet / iMet-style scoring: F2 per image, averaged
    python -m kit.tune hparams ...                       # Optuna search, see `python -m kit.tune hparams -h`
"""
from __future__ import annotations

import argparse
from pathlib import Path

from kit.metrics import METRIC_FORMS, metric_argument
from kit.runs import finished_runs, is_complete, load_run
from kit.tune.thresholds import DEFAULT_THRESHOLD_METRIC, ThresholdError, check_metric, tune_run_thresholds


def thresholds_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kit.tune [thresholds]",
        description="Fit per-class decision thresholds (multi-label) or biases (multi-class) on OOF "
                    "predictions; write tune/<run>/thresholds.json (recomputed on every call).",
        epilog="python -m kit.tune hparams ... runs the Optuna hyperparameter search instead.")
    parser.add_argument("--run", nargs="+", metavar="NAME",
                        help="run/blend names under --oof-dir (default: every finished one)")
    parser.add_argument("--metric", default=DEFAULT_THRESHOLD_METRIC, type=metric_argument,
                        help=f"metric to maximise (default {DEFAULT_THRESHOLD_METRIC}): {METRIC_FORMS}; "
                             "micro / samples: multi-label only; accuracy: multi-class only")
    parser.add_argument("--oof-dir", type=Path, default=Path("oof"))
    parser.add_argument("--tune-dir", type=Path, default=Path("tune"))
    return parser


def select_runs(oof_dir: Path, names: list[str] | None, metric: str) -> list[Path]:
    """The run folders to tune, all checked before any fitting starts."""
    if names:
        run_dirs = [oof_dir / name for name in names]
        missing = [str(d) for d in run_dirs if not is_complete(d)]
        if missing:
            raise SystemExit(f"not a finished run (needs config.json and oof.csv): {', '.join(missing)}")
    else:
        run_dirs = finished_runs(oof_dir)
        if not run_dirs:
            raise SystemExit(f"no finished runs under {oof_dir}/ (run `python -m kit.cv` first)")
    for run_dir in run_dirs:   # read every run once up front so a bad one fails before any fitting
        try:
            check_metric(metric, load_run(run_dir).task)
        except ThresholdError as err:
            raise SystemExit(f"{run_dir / 'config.json'}: {err}") from err
        except (ValueError, KeyError, FileNotFoundError) as err:
            raise SystemExit(f"{run_dir}: {err}") from err
    return run_dirs


def main(argv: list[str] | None = None) -> list[dict] | None:
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["hparams"]:
        from kit.tune.hparams import main as hparams_main   # lazy: thresholds work without the search module
        return hparams_main(argv[1:])
    if argv[:1] == ["thresholds"]:
        argv = argv[1:]
    args = thresholds_parser().parse_args(argv)
    run_dirs = select_runs(args.oof_dir, args.run, args.metric)
    return [tune_run_thresholds(d, args.tune_dir, args.metric) for d in run_dirs]

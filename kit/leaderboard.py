"""Leaderboard: every run and blend under `oof/` with its OOF metrics, best first.

Columns: name, kind (run/blend), data (competition folder name), task, method (blends), every metric of
the task (kit.metrics.all_scores), and when `tune/<name>/thresholds.json` exists `thresholded_<metric>`
(the metric the thresholds were tuned for, e.g. macro_f1 or samples_f2, on the OOF with those thresholds
applied — in-sample for the thresholds) plus the thresholds file's own honest `nested_after` when it has
one. Rows are grouped by data and task, then sorted by the main metric (the task's default, or `--metric`).
Saved as `submissions/leaderboard.csv`.

    python -m kit.leaderboard [--oof-dir oof] [--tune-dir tune] [--submissions-dir submissions] [--metric M]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kit.metrics import DEFAULT_METRIC, GREATER_IS_BETTER, MetricNameError, all_scores, decide, metric_name, score
from kit.runs import RunPredictions, finished_runs, load_run, read_json, write_csv
from kit.score import competition_scores
from kit.submission import read_thresholds, thresholds_path


def run_row(run: RunPredictions, tune_dir: str | Path, metric: str | None = None) -> dict:
    """One leaderboard row: identification plus the run's OOF metrics."""
    Y, P = run.labels(), run.oof_matrix()
    row = {"name": run.name, "kind": run.config.get("kind", "run"),
           "data": Path(run.config.get("data", {}).get("root", "")).name, "task": run.task,
           "method": run.config.get("method", ""), **all_scores(Y, P, run.task)}
    if metric and metric not in row:
        row[metric] = score(metric, Y, P, run.task)
    path = thresholds_path(tune_dir, run.name)
    if path.exists():
        spec = read_json(path)
        try:
            tuned_for = metric_name(spec.get("metric", "macro_f1"))   # any F-beta or accuracy
        except MetricNameError as e:
            print(f"warning: {path}: no thresholded column ({e})", file=sys.stderr)
            return row
        D = decide(P, run.task, read_thresholds(path, run.task, run.classes)).astype(np.float64)
        hard = competition_scores(Y, D, run.task, has_probabilities=False, metrics=[tuned_for])
        row[f"thresholded_{tuned_for}"] = hard[tuned_for]
        if isinstance(spec.get("nested_after"), (int, float)):
            row[f"thresholded_{tuned_for}_nested"] = float(spec["nested_after"])
    return row


def leaderboard(oof_dir: str | Path, tune_dir: str | Path, metric: str | None = None) -> pd.DataFrame:
    """Every finished run/blend under `oof_dir` scored on its OOF; unreadable folders are reported, skipped."""
    rows = []
    for path in finished_runs(oof_dir):
        try:
            rows.append(run_row(load_run(path), tune_dir, metric))
        except (ValueError, FileNotFoundError, KeyError) as e:
            print(f"warning: leaderboard skips {path}: {e}", file=sys.stderr)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    groups = []
    for (_, task), group in table.groupby(["data", "task"], sort=True):
        key = metric or DEFAULT_METRIC[task]
        groups.append(group.sort_values(key, ascending=not GREATER_IS_BETTER[key], na_position="last"))
    return pd.concat(groups, ignore_index=True)


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no finished runs)"
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def write_leaderboard(oof_dir: str | Path, tune_dir: str | Path, submissions_dir: str | Path,
                      metric: str | None = None) -> pd.DataFrame:
    """Compute, print and save `submissions_dir/leaderboard.csv`."""
    table = leaderboard(oof_dir, tune_dir, metric)
    print(format_table(table))
    if not table.empty:
        write_csv(table, Path(submissions_dir) / "leaderboard.csv")
    return table


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m kit.leaderboard", description=__doc__.split("\n")[0])
    parser.add_argument("--oof-dir", default="oof")
    parser.add_argument("--tune-dir", default="tune")
    parser.add_argument("--submissions-dir", default="submissions")
    parser.add_argument("--metric", default=None, choices=sorted(GREATER_IS_BETTER))
    args = parser.parse_args(argv)
    return write_leaderboard(args.oof_dir, args.tune_dir, args.submissions_dir, args.metric)


if __name__ == "__main__":
    main()

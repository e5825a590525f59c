"""Submission CSVs in exactly the format of the competition's `sample_submission.csv`.

The format is inferred from the sample (`<data root>/sample_submission.csv`, id column `data.id_col` of
the run's config):
- one column per class -> a probability per class (thresholds do not apply);
- one label column -> hard decisions: space-separated class names for multi-label (empty when no class is
  predicted, the Kaggle convention), one class name for multi-class.
Hard decisions use `tune/<name>/thresholds.json` when it exists (or an explicit file), else 0.5 / argmax.
Rows follow the sample's id order. Without a sample the file is `<id_col>, <class probabilities>`.

    python -m kit.submission NAME [--oof-dir oof] [--tune-dir tune] [--submissions-dir submissions]
                                  [--thresholds FILE] [--overwrite]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kit.metrics import MULTICLASS, MULTILABEL, decide
from kit.runs import ID, RunPredictions, load_run, read_json, write_csv

SAMPLE_NAME = "sample_submission.csv"
THRESHOLD_KIND = {MULTILABEL: "threshold", MULTICLASS: "bias"}


class SubmissionError(ValueError):
    """Bad input for a submission; the message names the file and the offending ids or classes."""


def _examples(items, limit: int = 10) -> str:
    items = list(items)
    return f"{items[:limit]}{' ...' if len(items) > limit else ''} ({len(items)} in all)"


def thresholds_path(tune_dir: str | Path, name: str) -> Path:
    return Path(tune_dir) / name / "thresholds.json"


def read_thresholds(path: str | Path, task: str, classes: list[str]) -> np.ndarray:
    """Per-class values of a thresholds file (`task, kind, classes, values`), in the order of `classes`."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"thresholds file {path} does not exist")
    spec = read_json(path)
    missing = [k for k in ("task", "kind", "classes", "values") if k not in spec]
    if missing:
        raise SubmissionError(f"{path}: missing key(s) {missing}")
    if spec["task"] != task or spec["kind"] != THRESHOLD_KIND[task]:
        raise SubmissionError(f"{path}: task {spec['task']!r} / kind {spec['kind']!r} do not fit a {task} run "
                              f"(expects kind {THRESHOLD_KIND[task]!r})")
    if sorted(spec["classes"]) != sorted(classes) or len(spec["values"]) != len(spec["classes"]):
        raise SubmissionError(f"{path}: classes {spec['classes']} (with {len(spec['values'])} values) do not "
                              f"match the predictions' classes {classes}")
    by_class = dict(zip(spec["classes"], spec["values"]))
    return np.array([float(by_class[c]) for c in classes])


def read_sample(data: dict) -> pd.DataFrame | None:
    """The competition's sample submission (all text), or None when the data has none."""
    path = Path(data["root"]) / SAMPLE_NAME
    if not path.exists():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def label_strings(D: np.ndarray, classes: list[str], task: str) -> list[str]:
    """0/1 decisions -> one class name per row (multi-class) or space-separated names (multi-label)."""
    if task == MULTICLASS:
        return [classes[i] for i in D.argmax(axis=1)]
    return [" ".join(c for c, d in zip(classes, row) if d) for row in D]


def submission_frame(test: pd.DataFrame, task: str, classes: list[str], id_col: str,
                     sample: pd.DataFrame | None = None, thresholds: np.ndarray | float = 0.5,
                     where: str = "test predictions") -> pd.DataFrame:
    """`test` (`id, <classes>` probabilities) -> a submission in the sample's columns and id order."""
    if sample is None:
        return test[[ID, *classes]].rename(columns={ID: id_col})
    if id_col not in sample.columns:
        raise SubmissionError(f"{SAMPLE_NAME} has no id column {id_col!r}; it has {list(sample.columns)}")
    value_cols = [c for c in sample.columns if c != id_col]
    have = set(test[ID])
    missing = [i for i in sample[id_col] if i not in have]
    if missing:
        raise SubmissionError(f"{where}: ids of {SAMPLE_NAME} missing from the test predictions: "
                              f"{_examples(missing)}")
    extra = sorted(set(test[ID]) - set(sample[id_col]))
    if extra:
        print(f"warning: {where}: dropping predictions for ids not in {SAMPLE_NAME}: {_examples(extra)}",
              file=sys.stderr)
    P = test.set_index(ID).loc[sample[id_col], classes].to_numpy(dtype=np.float64)
    out = pd.DataFrame({id_col: sample[id_col].to_numpy()})
    if sorted(value_cols) == sorted(classes):
        for c in value_cols:
            out[c] = P[:, classes.index(c)]
        return out
    if len(value_cols) != 1:
        raise SubmissionError(f"{SAMPLE_NAME} columns {value_cols} are neither one label column nor the "
                              f"class names {classes}")
    out[value_cols[0]] = label_strings(decide(P, task, thresholds), classes, task)
    return out


def choose_thresholds(run: RunPredictions, tune_dir: str | Path, explicit: str | Path | None) -> Path | None:
    """`explicit` when given, else `tune/<run>/thresholds.json` when it exists."""
    if explicit is not None:
        return Path(explicit)
    path = thresholds_path(tune_dir, run.name)
    return path if path.exists() else None


def write_submission(run: RunPredictions, path: str | Path, thresholds_file: str | Path | None = None,
                     overwrite: bool = False) -> Path:
    """Write `run`'s test predictions as `path` in the competition's sample format."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SubmissionError(f"{path} exists; pass --overwrite to replace it")
    if run.test is None:
        raise SubmissionError(f"{run.path}: has no test.csv to make a submission from")
    values = 0.5
    if thresholds_file is not None:
        values = read_thresholds(thresholds_file, run.task, run.classes)
        spec = read_json(thresholds_file)
        print(f"{run.name}: applying thresholds from {thresholds_file} (tuned for {spec.get('metric', '?')})")
        tuned_on = spec.get("run")
        stale = Path(thresholds_file).stat().st_mtime < (run.path / "oof.csv").stat().st_mtime
        if tuned_on == run.name and stale:
            print(f"warning: {thresholds_file} was tuned before {run.path / 'oof.csv'} was last written; "
                  f"re-run kit.tune thresholds on {run.name} if its predictions changed", file=sys.stderr)
    data = run.config["data"]
    frame = submission_frame(run.test, run.task, run.classes, data.get("id_col", ID), read_sample(data),
                             values, where=str(run.path / "test.csv"))
    return write_csv(frame, path)


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m kit.submission", description=__doc__.split("\n")[0])
    parser.add_argument("name", help="a run or blend folder under --oof-dir")
    parser.add_argument("--oof-dir", default="oof")
    parser.add_argument("--tune-dir", default="tune")
    parser.add_argument("--submissions-dir", default="submissions")
    parser.add_argument("--thresholds", default=None,
                        help="thresholds file (default: tune/<name>/thresholds.json when it exists)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        run = load_run(Path(args.oof_dir) / args.name)
        out = write_submission(run, Path(args.submissions_dir) / f"{args.name}.csv",
                               choose_thresholds(run, args.tune_dir, args.thresholds), args.overwrite)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from e
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()

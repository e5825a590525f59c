"""Submission CSVs in exactly the format of the competition's `sample_submission.csv`.

The format is read off the sample (`<data root>/sample_submission.csv`, see kit.data.sample), whose own
column names win:
- one column per class -> a probability per class (thresholds do not apply);
- one prediction column, named anything -> hard decisions: class names joined by the sample's separator
  for multi-label (empty when no class is predicted, the Kaggle convention), one class name for multi-class;
- the long format (`<id>_<class>` rows, one value column) -> a probability per row.
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

from kit.data.sample import LONG, PROBABILITIES, SAMPLE_NAME, SubmissionFormat, read_format, split_long_ids
from kit.metrics import MULTICLASS, MULTILABEL, decide
from kit.runs import ID, RunPredictions, load_run, read_json, write_csv
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


def sample_format(data: dict, classes: list[str], task: str) -> SubmissionFormat | None:
    """The submission format of the competition a run's `data` description points to (None: no sample)."""
    path = Path(data["root"]) / SAMPLE_NAME
    if not path.exists():
        return None
    return read_format(path, classes, task, data.get("label_sep"), data.get("id_col"))


def label_strings(D: np.ndarray, classes: list[str], task: str, sep: str = " ") -> list[str]:
    """0/1 decisions -> one class name per row (multi-class) or names joined by `sep` (multi-label)."""
    if task == MULTICLASS:
        return [classes[i] for i in D.argmax(axis=1)]
    return [sep.join(c for c, d in zip(classes, row) if d) for row in D]


def submission_frame(test: pd.DataFrame, task: str, classes: list[str], id_col: str,
                     fmt: SubmissionFormat | None = None, thresholds: np.ndarray | float = 0.5,
                     where: str = "test predictions") -> pd.DataFrame:
    """`test` (`id, <classes>` probabilities) -> a submission in the sample's format and id order: one label
    column (hard decisions with `thresholds`), one probability column per class, or the long format."""
    if fmt is None:
        return test[[ID, *classes]].rename(columns={ID: id_col})
    have = set(test[ID])
    missing = [i for i in fmt.ids if i not in have]
    if missing:
        raise SubmissionError(f"{where}: ids of {SAMPLE_NAME} missing from the test predictions: "
                              f"{_examples(missing)}")
    extra = sorted(have - set(fmt.ids))
    if extra:
        print(f"warning: {where}: dropping predictions for ids not in {SAMPLE_NAME}: {_examples(extra)}",
              file=sys.stderr)
    probs = test.set_index(ID).loc[fmt.ids, classes]
    if fmt.kind == LONG:  # one row per (id, class): the id cell is `<id>_<class>`
        pairs = split_long_ids(fmt.row_ids, classes)
        rows = probs.index.get_indexer([i for i, _ in pairs])
        cols = [classes.index(c) for _, c in pairs]
        values = probs.to_numpy(np.float64)[rows, cols]
        return pd.DataFrame({fmt.id_col: fmt.row_ids, fmt.columns[0]: values})
    P = probs.to_numpy(dtype=np.float64)
    out = pd.DataFrame({fmt.id_col: list(fmt.ids)})
    if fmt.kind == PROBABILITIES:
        for c in fmt.columns:
            out[c] = P[:, classes.index(c)]
        return out
    out[fmt.columns[0]] = label_strings(decide(P, task, thresholds), classes, task, fmt.sep)
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
    frame = submission_frame(run.test, run.task, run.classes, data.get("id_col", ID),
                             sample_format(data, run.classes, run.task), values, where=str(run.path / "test.csv"))
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

"""Score a submission CSV against a solution CSV with the competition metrics.

    python -m kit.score SUBMISSION --solution SOLUTION [--task multilabel|multiclass] [--metric NAME ...]

Both files share the solution's first column as id column (rows in any order; missing, extra or duplicate
ids are an error naming them). Each file is either one label column (space-separated class names, possibly
empty, or a single class name) or one column per class (0/1 in the solution, probabilities or 0/1 in the
submission). The task is multi-class when every row of the solution (and of a label submission) holds
exactly one class, else multi-label; `--task` overrides.

Metrics: multi-label -> macro F1 (+ micro F1, samples F1; + mean AUC for probability columns, decided at
0.5); multi-class -> accuracy + macro F1 (+ log loss for probability columns, rows renormalised to sum 1).
Macro F1 averages over the classes that occur in the solution or the predictions. `--metric` adds decision
metrics by name (accuracy or any F-beta: f2 = macro_f2, micro_f0.5, samples_f2 for Planet / iMet-style
scoring; see `kit.metrics.parse_metric`), macro ones over the same classes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from kit.metrics import (METRIC_FORMS, MULTICLASS, MULTILABEL, decide, decision_metric, log_loss, mean_auc,
                         metric_argument, metric_name, parse_metric)


class ScoreError(ValueError):
    """A submission or solution that cannot be scored; the message names the file and ids."""


def _examples(items, limit: int = 10) -> str:
    items = sorted(items)
    return f"{items[:limit]}{' ...' if len(items) > limit else ''} ({len(items)} in all)"


def read_table(path: str | Path, id_col: str | None = None) -> pd.DataFrame:
    """A submission/solution as text, indexed by its id column (the first column unless given)."""
    path = Path(path)
    if not path.exists():
        raise ScoreError(f"{path} does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ScoreError(f"{path}: cannot be read as CSV ({e})") from e
    id_col = id_col or df.columns[0]
    if id_col not in df.columns or len(df.columns) < 2:
        raise ScoreError(f"{path}: needs id column {id_col!r} and at least one value column; "
                         f"has {list(df.columns)}")
    dup = df[id_col][df[id_col].duplicated()]
    if len(dup):
        raise ScoreError(f"{path}: duplicate ids {_examples(set(dup))}")
    return df.set_index(id_col)


def _label_sets(df: pd.DataFrame) -> list[list[str]] | None:
    """Space-separated labels per row when `df` has a single value column, else None."""
    return [s.split() for s in df.iloc[:, 0]] if df.shape[1] == 1 else None


def _numeric(df: pd.DataFrame, path) -> np.ndarray:
    try:
        return df.apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    except ValueError as e:
        raise ScoreError(f"{path}: class columns must be numbers ({e})") from e


def _one_hot(label_sets, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    Y = np.zeros((len(label_sets), len(classes)))
    for r, labels in enumerate(label_sets):
        Y[r, [index[c] for c in labels]] = 1
    return Y


def _single_per_row(label_sets, ids, path) -> None:
    bad = [i for i, labels in zip(ids, label_sets) if len(labels) != 1]
    if bad:
        raise ScoreError(f"{path}: a multi-class file needs exactly one label per row; ids {_examples(bad)}")


def load_pair(submission: str | Path, solution: str | Path, task: str | None = None):
    """Aligned (Y, P, task, classes, has_probabilities) from the two files; P is 0/1 for label files."""
    sol = read_table(solution)
    sub = read_table(submission, sol.index.name)
    missing, extra = set(sol.index) - set(sub.index), set(sub.index) - set(sol.index)
    if missing or extra:
        raise ScoreError(f"{submission}: ids differ from {solution}: missing {_examples(missing)}, "
                         f"unknown {_examples(extra)}")
    sub = sub.loc[sol.index]
    sol_sets, sub_sets = _label_sets(sol), _label_sets(sub)
    if sol_sets is None:
        classes = list(sol.columns)
        Y = _numeric(sol, solution)
        if not np.isin(Y, (0, 1)).all():
            raise ScoreError(f"{solution}: class columns of a solution must be 0/1")
        sol_sets = [[c for c, y in zip(classes, row) if y] for row in Y]
    else:
        classes = sorted({c for s in sol_sets for c in s})
    if sub_sets is None:
        unknown = sorted(set(classes) - set(sub.columns))
        if unknown:
            raise ScoreError(f"{submission}: no probability column for class(es) {unknown}")
        classes = list(sub.columns)
    else:
        classes += sorted({c for s in sub_sets for c in s} - set(classes))
    if task is None:
        single = all(len(s) == 1 for s in sol_sets) and (sub_sets is None or all(len(s) == 1 for s in sub_sets))
        task = MULTICLASS if single else MULTILABEL
    if task == MULTICLASS:
        _single_per_row(sol_sets, sol.index, solution)
        if sub_sets is not None:
            _single_per_row(sub_sets, sub.index, submission)
    Y = _one_hot(sol_sets, classes)
    P = _one_hot(sub_sets, classes) if sub_sets is not None else _numeric(sub[classes], submission)
    return Y, P, task, classes, sub_sets is None


def named_scores(Y: np.ndarray, D: np.ndarray, metrics) -> dict[str, float]:
    """Decision metrics by (canonical) name of 0/1 decisions `D`; macro ones over the classes that occur in
    the labels or the decisions, as the competition scores above."""
    seen = np.flatnonzero(Y.any(axis=0) | D.any(axis=0))
    return {metric_name(m): decision_metric(m, Y[:, seen], D[:, seen]) if parse_metric(m)[0] == "macro"
            else decision_metric(m, Y, D) for m in metrics}


def competition_scores(Y: np.ndarray, P: np.ndarray, task: str, has_probabilities: bool,
                       metrics=()) -> dict[str, float]:
    """The competition metrics of (n, C) labels vs predictions (probabilities or 0/1), plus the decision
    metrics named in `metrics` (decided at 0.5 / argmax)."""
    if task == MULTICLASS:
        if has_probabilities:
            P = P / np.maximum(P.sum(axis=1, keepdims=True), 1e-15)
        D = decide(P, task)
        y, d = Y.argmax(1), D.argmax(1)
        labels = np.union1d(y, d)
        out = {"accuracy": float(np.mean(y == d)),
               "macro_f1": float(f1_score(y, d, labels=labels, average="macro", zero_division=0))}
        if has_probabilities:
            out["log_loss"] = log_loss(Y, P, task)
    else:
        D = decide(P, task)
        seen = np.flatnonzero(Y.any(axis=0) | D.any(axis=0))
        out = {"macro_f1": float(f1_score(Y[:, seen], D[:, seen], average="macro", zero_division=0)),
               "micro_f1": float(f1_score(Y, D, average="micro", zero_division=0)),
               "samples_f1": float(f1_score(Y, D, average="samples", zero_division=0))}
        if has_probabilities:
            out["auc"] = mean_auc(Y, P)
    extra = named_scores(Y, D, [m for m in metrics if metric_name(m) not in out])
    return {**out, **extra}


def score_submission(submission: str | Path, solution: str | Path, task: str | None = None,
                     metrics=()) -> dict[str, float]:
    Y, P, task, classes, has_probabilities = load_pair(submission, solution, task)
    return competition_scores(Y, P, task, has_probabilities, metrics)


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m kit.score", description=__doc__.split("\n")[0])
    parser.add_argument("submission")
    parser.add_argument("--solution", required=True)
    parser.add_argument("--task", choices=(MULTILABEL, MULTICLASS), default=None, help="default: inferred")
    parser.add_argument("--metric", nargs="+", type=metric_argument, default=[], metavar="NAME",
                        help=f"also report these decision metrics: {METRIC_FORMS}")
    args = parser.parse_args(argv)
    try:
        Y, P, task, classes, has_probabilities = load_pair(args.submission, args.solution, args.task)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from e
    scores = competition_scores(Y, P, task, has_probabilities, args.metric)
    print(f"{args.submission} vs {args.solution} ({task}, {len(Y)} rows, {len(classes)} classes)")
    for name, value in scores.items():
        print(f"{name}: {value:.6f}")
    return scores


if __name__ == "__main__":
    main()

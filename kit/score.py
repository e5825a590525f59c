"""Score a submission CSV against a solution CSV with the competition metrics.

    python -m kit.score SUBMISSION --solution SOLUTION [--task multilabel|multiclass] [--metric NAME ...]

Both files share the solution's first column as id column (rows in any order; missing, extra or duplicate
ids are an error naming them). Each file is either one label column (class names separated as in train.csv
— space, comma, semicolon or pipe, detected —, possibly empty, or a single class name) or one column per
class (0/1 in the solution, probabilities or 0/1 in the submission). The task is multi-class when every row
of the solution (and of a label submission) holds exactly one class, else multi-label; `--task` overrides.
A solution's Kaggle `Usage` column (Public / Private / Ignored) is honoured: Ignored rows are not scored,
and Public and Private are also scored apart.

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

from kit.data.labels import detect_separator, split_cells
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


def split_usage(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Kaggle's `Usage` column (Public / Private / Ignored) taken out of a solution; Ignored rows dropped."""
    usage_col = next((c for c in df.columns if c.lower() == "usage"), None)
    if usage_col is None:
        return df, None
    usage = df[usage_col].str.strip()
    keep = usage.str.lower() != "ignored"
    return df.loc[keep].drop(columns=usage_col), usage[keep]


def _label_sets(df: pd.DataFrame, sep: str | None, path) -> tuple[list[list[str]] | None, str | None]:
    """(labels per row, separator) when `df` has a single value column, else (None, None); the separator is
    detected as kit.data does for train.csv unless given."""
    if df.shape[1] != 1:
        return None, None
    cells = df.iloc[:, 0].str.strip()
    if sep is None:
        sep = detect_separator(cells, df.index.to_numpy(dtype=str), path, None)
    return split_cells(cells, sep), sep


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
    """Aligned (Y, P, task, classes, has_probabilities, usage) from the two files; P is 0/1 for label files,
    usage the solution's Public/Private column per row (None without one)."""
    sol, usage = split_usage(read_table(solution))
    sub = read_table(submission, sol.index.name)
    if usage is not None:  # the submission need not (but may) list the Ignored ids
        kept = set(sol.index)
        sub = sub.loc[[i for i in sub.index if i in kept]]
    missing, extra = set(sol.index) - set(sub.index), set(sub.index) - set(sol.index)
    if missing or extra:
        raise ScoreError(f"{submission}: ids differ from {solution}: missing {_examples(missing)}, "
                         f"unknown {_examples(extra)}")
    sub = sub.loc[sol.index]
    sol_sets, sep = _label_sets(sol, None, solution)
    sub_sets, _ = _label_sets(sub, sep, submission)
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
    return Y, P, task, classes, sub_sets is None, None if usage is None else usage.to_numpy(dtype=str)


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
                     metrics=()) -> dict:
    """The metrics (and `metrics`, extra decision metric names) on every scored row; with a `Usage` column
    also `by_usage` {Public: {...}, Private: {...}} (a leaderboard's two halves, scored apart as Kaggle does)."""
    Y, P, task, classes, has_probabilities, usage = load_pair(submission, solution, task)
    scores = competition_scores(Y, P, task, has_probabilities, metrics)
    if usage is not None:
        scores["by_usage"] = {u: competition_scores(Y[usage == u], P[usage == u], task, has_probabilities, metrics)
                              for u in sorted(set(usage))}
    return scores


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m kit.score", description=__doc__.split("\n")[0])
    parser.add_argument("submission")
    parser.add_argument("--solution", required=True)
    parser.add_argument("--task", choices=(MULTILABEL, MULTICLASS), default=None, help="default: inferred")
    parser.add_argument("--metric", nargs="+", type=metric_argument, default=[], metavar="NAME",
                        help=f"also report these decision metrics: {METRIC_FORMS}")
    args = parser.parse_args(argv)
    try:
        scores = score_submission(args.submission, args.solution, args.task, args.metric)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from e
    print(f"{args.submission} vs {args.solution}")
    sections = {"all scored rows": scores, **scores.get("by_usage", {})}
    for title, values in sections.items():
        print(f"{title}: " + "  ".join(f"{k} {v:.6f}" for k, v in values.items() if k != "by_usage"))
    return scores


if __name__ == "__main__":
    main()

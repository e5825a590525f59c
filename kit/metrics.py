"""Validation metrics for both tasks, computed from labels and predicted probabilities.

`Y` is an (n, C) 0/1 matrix in both tasks (one-hot for multi-class); `P` the (n, C) probabilities
(sigmoid outputs for multi-label, softmax rows for multi-class).
"""
from __future__ import annotations

import argparse
import re

import numpy as np

MULTILABEL, MULTICLASS = "multilabel", "multiclass"
EPS = 1e-7

# metric name -> True when larger is better
GREATER_IS_BETTER = {"macro_f1": True, "auc": True, "accuracy": True, "log_loss": False}
METRICS_BY_TASK = {MULTILABEL: ("macro_f1", "auc", "log_loss"),
                   MULTICLASS: ("accuracy", "macro_f1", "log_loss")}
DEFAULT_METRIC = {MULTILABEL: "auc", MULTICLASS: "macro_f1"}

# decision metrics (of hard 0/1 decisions): accuracy, or F-beta averaged over classes, over all counts or over rows
AVERAGES = ("macro", "micro", "samples")
METRIC_FORMS = ("accuracy, or F-beta for any positive number B: fB (= macro_fB), macro_fB, micro_fB, samples_fB "
                "(e.g. f1, f2, f0.5, micro_f1, samples_f2: Planet / iMet-style scoring)")
_FBETA_NAME = re.compile(r"(?:(macro|micro|samples)_)?f(\d+(?:\.\d*)?|\.\d+)")


class MetricNameError(ValueError):
    """A decision metric name that is none of the documented forms."""


def parse_metric(name: str) -> tuple[str, float | None]:
    """Decision metric name -> (average, beta): ("macro" | "micro" | "samples", beta) for F-beta,
    ("accuracy", None) for accuracy. Case-insensitive; a bare fB is macro_fB."""
    text = str(name).strip().lower()
    if text == "accuracy":
        return "accuracy", None
    match = _FBETA_NAME.fullmatch(text)
    beta = float(match.group(2)) if match else 0.0
    if not match or not 0 < beta < np.inf:
        raise MetricNameError(f"unknown decision metric {name!r}; expected {METRIC_FORMS}")
    return match.group(1) or "macro", beta


def metric_name(name: str) -> str:
    """The canonical spelling of a decision metric name: "f2" -> "macro_f2", "samples_F2.0" -> "samples_f2"."""
    average, beta = parse_metric(name)
    return average if beta is None else f"{average}_f{np.format_float_positional(beta, trim='-')}"


def metric_argument(text: str) -> str:
    """argparse `type=` for a decision metric: canonical name, or a usage error listing the forms."""
    try:
        return metric_name(text)
    except MetricNameError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def fbeta_from_counts(tp, n_pred, n_true, beta: float = 1.0):
    """(1+b^2) TP / (b^2 true + predicted), 0 where both are empty (sklearn's zero_division=0); b=1 is F1."""
    b2 = float(beta) ** 2
    denom = np.asarray(b2 * np.asarray(n_true) + n_pred, dtype=np.float64)
    return np.divide((1 + b2) * np.asarray(tp, dtype=np.float64), denom, out=np.zeros_like(denom),
                     where=denom > 0)


def decision_metric(metric: str, Y: np.ndarray, D: np.ndarray) -> float:
    """Score 0/1 decisions `D` against 0/1 labels `Y` (both (n, C); one-hot for multi-class). Macro averages
    over all C columns; accuracy is the share of rows whose decisions are all right."""
    average, beta = parse_metric(metric)
    Y, D = np.asarray(Y) > 0.5, np.asarray(D) > 0.5
    if average == "accuracy":
        return float((Y == D).all(axis=1).mean())
    axis = 1 if average == "samples" else 0
    tp, n_pred, n_true = (Y & D).sum(axis), D.sum(axis), Y.sum(axis)
    if average == "micro":
        tp, n_pred, n_true = tp.sum(), n_pred.sum(), n_true.sum()
    return float(fbeta_from_counts(tp, n_pred, n_true, beta).mean())


def mean_auc(Y: np.ndarray, P: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes that have both a positive and a negative row."""
    from sklearn.metrics import roc_auc_score  # lazy: prediction in an offline notebook needs no sklearn

    aucs = [roc_auc_score(Y[:, c], P[:, c]) for c in range(Y.shape[1]) if 0 < Y[:, c].sum() < len(Y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def log_loss(Y: np.ndarray, P: np.ndarray, task: str) -> float:
    P = np.clip(P, EPS, 1 - EPS)
    if task == MULTICLASS:
        return float(-np.mean(np.sum(Y * np.log(P), axis=1)))
    return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))


def decide(P: np.ndarray, task: str, thresholds: np.ndarray | float = 0.5) -> np.ndarray:
    """Hard 0/1 decisions: per-class thresholds for multi-label, argmax (of P + biases) for multi-class."""
    if task == MULTICLASS:
        biased = np.log(np.clip(P, EPS, 1)) + (0 if np.isscalar(thresholds) else thresholds)
        return np.eye(P.shape[1], dtype=np.int64)[np.argmax(biased, axis=1)]
    return (P >= thresholds).astype(np.int64)


def score(metric: str, Y: np.ndarray, P: np.ndarray, task: str) -> float:
    """One named metric; F1 and accuracy use hard decisions at 0.5 / argmax."""
    Y = np.asarray(Y)
    if metric == "auc":
        return mean_auc(Y, P)
    if metric == "log_loss":
        return log_loss(Y, P, task)
    from sklearn.metrics import f1_score

    D = decide(P, task)
    if metric == "macro_f1":
        if task == MULTICLASS:
            return float(f1_score(Y.argmax(1), D.argmax(1), average="macro",
                                  labels=np.arange(Y.shape[1]), zero_division=0))
        return float(f1_score(Y, D, average="macro", zero_division=0))
    if metric == "accuracy":
        return float(np.mean(Y.argmax(1) == D.argmax(1))) if task == MULTICLASS \
            else float(np.mean((Y == D).all(axis=1)))
    raise ValueError(f"unknown metric {metric!r}; choose from {sorted(GREATER_IS_BETTER)}")


def all_scores(Y: np.ndarray, P: np.ndarray, task: str) -> dict[str, float]:
    """Every metric of the task, by name."""
    return {m: score(m, Y, P, task) for m in METRICS_BY_TASK[task]}


def is_better(metric: str, new: float, old: float | None) -> bool:
    if old is None or np.isnan(old):
        return not np.isnan(new)
    return new > old if GREATER_IS_BETTER[metric] else new < old

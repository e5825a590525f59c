"""Validation metrics for both tasks, computed from labels and predicted probabilities.

`Y` is an (n, C) 0/1 matrix in both tasks (one-hot for multi-class); `P` the (n, C) probabilities
(sigmoid outputs for multi-label, softmax rows for multi-class).
"""
from __future__ import annotations

import numpy as np

MULTILABEL, MULTICLASS = "multilabel", "multiclass"
EPS = 1e-7

# metric name -> True when larger is better
GREATER_IS_BETTER = {"macro_f1": True, "auc": True, "accuracy": True, "log_loss": False}
METRICS_BY_TASK = {MULTILABEL: ("macro_f1", "auc", "log_loss"),
                   MULTICLASS: ("accuracy", "macro_f1", "log_loss")}
DEFAULT_METRIC = {MULTILABEL: "auc", MULTICLASS: "macro_f1"}


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

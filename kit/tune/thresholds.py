"""Per-class decision rules fitted on out-of-fold predictions, for accuracy or any F-beta.

Multi-label: a probability threshold per class (predict c when p_c >= value_c), for macro / micro / samples
F-beta (exact sweeps, `kit.tune.fbeta`). Multi-class: an additive bias per class on log-probabilities
(predict argmax of log p + value), for accuracy / macro F-beta (`kit.tune.biases`). Both are applied by
`kit.metrics.decide`. Fitting on all OOF rows is optimistic, so `nested_estimate` also reports an honest
K-fold estimate: values fitted on the other folds, scored on the held-out fold only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.metrics import MULTICLASS, MULTILABEL, decide, decision_metric, metric_name, parse_metric
from kit.runs import FOLD, load_run, write_json
from kit.tune.biases import fit_biases
from kit.tune.fbeta import THRESHOLDS_BY_AVERAGE

# averages each task can tune (micro / samples F-beta of one label per row both equal accuracy)
TUNABLE_AVERAGES = {MULTILABEL: ("macro", "micro", "samples"), MULTICLASS: ("accuracy", "macro")}
TUNABLE_FORMS = {MULTILABEL: "macro_fB (or fB), micro_fB or samples_fB, e.g. f2, micro_f1, samples_f2",
                 MULTICLASS: "accuracy or macro_fB (or fB), e.g. f1, f2"}
DEFAULT_THRESHOLD_METRIC = "macro_f1"
KIND = {MULTILABEL: "threshold", MULTICLASS: "bias"}


class ThresholdError(ValueError):
    """Bad input to threshold fitting: shapes, metric / task mismatch, NaNs."""


def check_metric(metric: str, task: str) -> str:
    """The canonical name of `metric` (see `kit.metrics.parse_metric`) when it can be tuned for `task`."""
    if task not in TUNABLE_AVERAGES:
        raise ThresholdError(f"unknown task {task!r}; expected {MULTILABEL!r} or {MULTICLASS!r}")
    try:
        average, _ = parse_metric(metric)
    except ValueError as e:
        raise ThresholdError(str(e)) from e
    if average not in TUNABLE_AVERAGES[task]:
        raise ThresholdError(f"metric {metric!r} cannot be tuned for {task}; choose {TUNABLE_FORMS[task]}")
    return metric_name(metric)


def default_values(task: str, n_classes: int) -> np.ndarray:
    """The untuned rule: threshold 0.5 (multi-label) or zero bias = plain argmax (multi-class)."""
    return np.full(n_classes, 0.5) if task == MULTILABEL else np.zeros(n_classes)


def threshold_metric(metric: str, Y: np.ndarray, P: np.ndarray, task: str, values: np.ndarray) -> float:
    """`metric` of the decisions `kit.metrics.decide(P, task, values)`."""
    check_metric(metric, task)
    return decision_metric(metric, Y, decide(P, task, np.asarray(values, dtype=np.float64)))


def _check_inputs(Y, P, task, metric):
    Y, P = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
    if Y.ndim != 2 or Y.shape != P.shape or len(Y) == 0:
        raise ThresholdError(f"labels {Y.shape} and probabilities {P.shape} must be equal non-empty (n, C)")
    if not np.isfinite(P).all():
        raise ThresholdError("probabilities contain NaN or infinity")
    check_metric(metric, task)
    if task == MULTICLASS:
        bad = np.flatnonzero(~(((Y == 0) | (Y == 1)).all(axis=1) & (Y.sum(axis=1) == 1)))
        if len(bad):
            raise ThresholdError(f"multi-class labels must be one-hot; row {bad[0]} is {Y[bad[0]].tolist()}")
    return Y, P


def fit_thresholds(Y, P, task: str, metric: str = DEFAULT_THRESHOLD_METRIC) -> np.ndarray:
    """Per-class values (thresholds or biases, see module doc) maximising `metric` on (Y, P)."""
    Y, P = _check_inputs(Y, P, task, metric)
    if task == MULTICLASS:
        return fit_biases(Y, P, metric)
    average, beta = parse_metric(metric)
    return THRESHOLDS_BY_AVERAGE[average](Y, P, beta)


def nested_estimate(Y, P, folds, task: str, metric: str = DEFAULT_THRESHOLD_METRIC) -> tuple[float, float]:
    """(metric at default decisions, metric of held-out decisions): each fold's rows are decided with
    values fitted on the other folds' rows only; both scores are on all rows."""
    Y, P = _check_inputs(Y, P, task, metric)
    folds = np.asarray(folds)
    if len(folds) != len(Y):
        raise ThresholdError(f"{len(folds)} fold ids for {len(Y)} rows")
    if len(np.unique(folds)) < 2:
        raise ThresholdError("nested estimate needs at least 2 folds")
    D = np.zeros_like(Y, dtype=np.int64)
    for k in np.unique(folds):
        held = folds == k
        values = fit_thresholds(Y[~held], P[~held], task, metric)
        D[held] = decide(P[held], task, values)
    before = threshold_metric(metric, Y, P, task, default_values(task, Y.shape[1]))
    return before, decision_metric(metric, Y, D)


def tune_run_thresholds(run_dir: str | Path, tune_dir: str | Path, metric: str | None = None) -> dict:
    """Fit on all OOF rows of a run/blend, estimate honestly, write `<tune_dir>/<run>/thresholds.json`
    (its `metric` is the canonical name: "f2" is written "macro_f2")."""
    run = load_run(run_dir)
    metric = check_metric(metric or DEFAULT_THRESHOLD_METRIC, run.task)
    Y, P, folds = run.labels(), run.oof_matrix(), run.oof[FOLD].to_numpy()
    values = fit_thresholds(Y, P, run.task, metric)
    nested_before, nested_after = nested_estimate(Y, P, folds, run.task, metric)
    result = {"run": run.name, "task": run.task, "metric": metric, "kind": KIND[run.task],
              "classes": run.classes, "values": [float(v) for v in values],
              "before": threshold_metric(metric, Y, P, run.task, default_values(run.task, len(values))),
              "after": threshold_metric(metric, Y, P, run.task, values),
              "nested_before": nested_before, "nested_after": nested_after, "n_rows": int(len(Y))}
    write_json(result, Path(tune_dir) / run.name / "thresholds.json")
    print(f"{run.name}: {metric} {result['before']:.3f} -> {result['after']:.3f} in-sample, "
          f"{nested_before:.3f} -> {nested_after:.3f} nested")
    return result

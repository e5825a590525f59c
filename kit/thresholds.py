"""Per-class decision rules fitted on out-of-fold predictions.

Multi-label: a probability threshold per class (predict c when p_c >= value_c). Multi-class: an additive
bias per class on log-probabilities (predict argmax of log p + value). Both are applied by
`kit.metrics.decide`. Fitting on all OOF rows is optimistic, so `nested_estimate` also reports an honest
K-fold estimate: values fitted on the other folds, scored on the held-out fold only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.biases import f1_from_counts, fit_biases
from kit.metrics import MULTICLASS, MULTILABEL, decide
from kit.runs import FOLD, load_run, write_json

SUPPORTED_METRICS = {MULTILABEL: ("macro_f1", "micro_f1", "samples_f1"),
                     MULTICLASS: ("accuracy", "macro_f1")}
DEFAULT_THRESHOLD_METRIC = "macro_f1"
KIND = {MULTILABEL: "threshold", MULTICLASS: "bias"}


class ThresholdError(ValueError):
    """Bad input to threshold fitting: shapes, metric / task mismatch, NaNs."""


def check_metric(metric: str, task: str) -> None:
    if task not in SUPPORTED_METRICS:
        raise ThresholdError(f"unknown task {task!r}; expected {MULTILABEL!r} or {MULTICLASS!r}")
    if metric not in SUPPORTED_METRICS[task]:
        raise ThresholdError(f"metric {metric!r} cannot be tuned for {task}; "
                             f"choose from {SUPPORTED_METRICS[task]}")


def default_values(task: str, n_classes: int) -> np.ndarray:
    """The untuned rule: threshold 0.5 (multi-label) or zero bias = plain argmax (multi-class)."""
    return np.full(n_classes, 0.5) if task == MULTILABEL else np.zeros(n_classes)


def decision_metric(metric: str, Y: np.ndarray, D: np.ndarray) -> float:
    """Score 0/1 decisions `D` against 0/1 labels `Y` (both (n, C); one-hot for multi-class)."""
    Y, D = np.asarray(Y) > 0.5, np.asarray(D) > 0.5
    tp = (Y & D).sum(axis=0 if metric != "samples_f1" else 1)
    if metric == "macro_f1":
        return float(f1_from_counts(tp, D.sum(0), Y.sum(0)).mean())
    if metric == "micro_f1":
        return float(f1_from_counts(tp.sum(), D.sum(), Y.sum()))
    if metric == "samples_f1":
        return float(f1_from_counts(tp, D.sum(1), Y.sum(1)).mean())
    if metric == "accuracy":
        return float((Y == D).all(axis=1).mean())
    raise ThresholdError(f"unknown metric {metric!r}")


def threshold_metric(metric: str, Y: np.ndarray, P: np.ndarray, task: str, values: np.ndarray) -> float:
    """`metric` of the decisions `kit.metrics.decide(P, task, values)`."""
    check_metric(metric, task)
    return decision_metric(metric, Y, decide(P, task, np.asarray(values, dtype=np.float64)))


def _between(hi: float, lo: float) -> float:
    """A value v with lo < v <= hi, midway when floating point allows (so `p >= v` splits exactly there)."""
    mid = hi / 2 + lo / 2
    return mid if lo < mid <= hi else hi


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Exact F1-optimal threshold of one class for the rule "positive iff p >= t"; returns (t, f1).

    Sort the scores once, then cumulative TP/FP counts give the F1 of every distinct score as a threshold in
    one pass. Equal scores cannot be separated, so only the last row of each run of ties is a candidate.
    "Predict nothing" is a candidate too (it wins only for a class without positives). Ties in F1 go to
    the higher threshold. The returned t sits midway between the chosen score and the next lower distinct
    score (0 below the lowest, 1 above the highest for "predict nothing"): it selects exactly the same rows
    in-sample but does not sit on a training score, so it generalises better to unseen scores.
    """
    y, p = np.asarray(y, dtype=np.float64).ravel(), np.asarray(p, dtype=np.float64).ravel()
    if len(y) != len(p) or len(p) == 0:
        raise ThresholdError(f"need equal, non-zero lengths of labels and scores, got {len(y)} and {len(p)}")
    if not np.isfinite(p).all():
        raise ThresholdError("scores contain NaN or infinity")
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order] > 0.5
    tp = np.cumsum(ys)
    last_of_tie = np.append(ps[1:] < ps[:-1], True)           # row k is the last of its run of equal scores
    ends = np.flatnonzero(last_of_tie)
    f1 = np.concatenate([[0.0], f1_from_counts(tp[ends], ends + 1, tp[-1])])  # [0]: predict nothing
    best = int(np.argmax(f1))
    if best == 0:
        above = ps[0] / 2 + 0.5                                # midway to 1, strictly above every score
        return float(above if above > ps[0] else np.nextafter(ps[0], np.inf)), float(f1[0])
    k = ends[best - 1]
    lower = ps[k + 1] if k + 1 < len(ps) else min(0.0, ps[k])
    return float(_between(ps[k], lower)), float(f1[best])


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


def optuna_thresholds(Y, P, metric: str, seed: int = 0, n_trials: int = 200,
                      initial: np.ndarray | None = None) -> np.ndarray:
    """Seeded TPE search over all C multi-label thresholds in [0, 1]; `initial` is tried first and kept
    unless a trial beats it strictly, so the result is never worse than `initial`."""
    import optuna

    n_classes = Y.shape[1]

    def objective(trial):
        values = np.array([trial.suggest_float(f"t{c:03d}", 0.0, 1.0) for c in range(n_classes)])
        return decision_metric(metric, Y, decide(P, MULTILABEL, values))

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # one INFO line per trial is noise here
    try:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        if initial is not None:
            study.enqueue_trial({f"t{c:03d}": float(np.clip(v, 0, 1)) for c, v in enumerate(initial)})
        study.optimize(objective, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    found = np.array([study.best_params[f"t{c:03d}"] for c in range(n_classes)])
    if initial is not None and study.best_value <= decision_metric(metric, Y, decide(P, MULTILABEL, initial)):
        return np.asarray(initial, dtype=np.float64)
    return found


def fit_thresholds(Y, P, task: str, metric: str = DEFAULT_THRESHOLD_METRIC, seed: int = 0,
                   n_trials: int = 200) -> np.ndarray:
    """Per-class values (thresholds or biases, see module doc) maximising `metric` on (Y, P)."""
    Y, P = _check_inputs(Y, P, task, metric)
    if task == MULTICLASS:
        return fit_biases(Y, P, metric)
    per_class = np.array([best_threshold(Y[:, c], P[:, c])[0] for c in range(Y.shape[1])])
    if metric == "macro_f1":                                   # decomposable: per-class optimum is global
        return per_class
    return optuna_thresholds(Y, P, metric, seed=seed, n_trials=n_trials, initial=per_class)


def nested_estimate(Y, P, folds, task: str, metric: str = DEFAULT_THRESHOLD_METRIC, seed: int = 0,
                    n_trials: int = 200) -> tuple[float, float]:
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
        values = fit_thresholds(Y[~held], P[~held], task, metric, seed=seed, n_trials=n_trials)
        D[held] = decide(P[held], task, values)
    before = threshold_metric(metric, Y, P, task, default_values(task, Y.shape[1]))
    return before, decision_metric(metric, Y, D)


def tune_run_thresholds(run_dir: str | Path, tune_dir: str | Path, metric: str | None = None,
                        seed: int = 0, n_trials: int = 200) -> dict:
    """Fit on all OOF rows of a run/blend, estimate honestly, write `<tune_dir>/<run>/thresholds.json`."""
    run = load_run(run_dir)
    metric = metric or DEFAULT_THRESHOLD_METRIC
    check_metric(metric, run.task)
    Y, P, folds = run.labels(), run.oof_matrix(), run.oof[FOLD].to_numpy()
    values = fit_thresholds(Y, P, run.task, metric, seed=seed, n_trials=n_trials)
    nested_before, nested_after = nested_estimate(Y, P, folds, run.task, metric, seed=seed, n_trials=n_trials)
    result = {"run": run.name, "task": run.task, "metric": metric, "kind": KIND[run.task],
              "classes": run.classes, "values": [float(v) for v in values],
              "before": threshold_metric(metric, Y, P, run.task, default_values(run.task, len(values))),
              "after": threshold_metric(metric, Y, P, run.task, values),
              "nested_before": nested_before, "nested_after": nested_after, "n_rows": int(len(Y))}
    write_json(result, Path(tune_dir) / run.name / "thresholds.json")
    print(f"{run.name}: {metric} {result['before']:.3f} -> {result['after']:.3f} in-sample, "
          f"{nested_before:.3f} -> {nested_after:.3f} nested")
    return result

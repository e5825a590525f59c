"""Per-class decision rules fitted on out-of-fold predictions.

Multi-label: a probability threshold per class (predict c when p_c >= value_c). Multi-class: an additive
bias per class on log-probabilities (predict argmax of log p + value). Both are applied by
`kit.metrics.decide`. Fitting on all OOF rows is optimistic, so `nested_estimate` also reports an honest
K-fold estimate: values fitted on the other folds, scored on the held-out fold only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.metrics import EPS, MULTICLASS, MULTILABEL, decide
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
        raise ThresholdError(f"metric {metric!r} cannot be tuned for {task}; choose from {SUPPORTED_METRICS[task]}")


def default_values(task: str, n_classes: int) -> np.ndarray:
    """The untuned rule: threshold 0.5 (multi-label) or zero bias = plain argmax (multi-class)."""
    return np.full(n_classes, 0.5) if task == MULTILABEL else np.zeros(n_classes)


def _f1(tp, n_pred, n_true):
    """2TP / (predicted + true), 0 where both are empty (sklearn's zero_division=0)."""
    denom = np.asarray(n_pred + n_true, dtype=np.float64)
    return np.divide(2.0 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def decision_metric(metric: str, Y: np.ndarray, D: np.ndarray) -> float:
    """Score 0/1 decisions `D` against 0/1 labels `Y` (both (n, C); one-hot for multi-class)."""
    Y, D = np.asarray(Y) > 0.5, np.asarray(D) > 0.5
    tp = (Y & D).sum(axis=0 if metric != "samples_f1" else 1)
    if metric == "macro_f1":
        return float(_f1(tp, D.sum(0), Y.sum(0)).mean())
    if metric == "micro_f1":
        return float(_f1(tp.sum(), D.sum(), Y.sum()))
    if metric == "samples_f1":
        return float(_f1(tp, D.sum(1), Y.sum(1)).mean())
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
    f1 = np.concatenate([[0.0], _f1(tp[ends], ends + 1, tp[-1])])  # index 0: predict nothing
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


def _bias_candidates(y_idx, L, b, c, metric):
    """Exact 1-D search of class c's bias with the others fixed: (metric per candidate, candidate biases).

    Row i switches to class c once b_c exceeds d_i = (best other biased log-prob) - log p_ic, so sorting d
    gives every distinct decision set; k = number of switched rows, only at ends of runs of equal d."""
    n, n_classes = L.shape
    others = L + b
    others[:, c] = -np.inf
    o = np.argmax(others, axis=1)
    d = others[np.arange(n), o] - L[:, c]
    order = np.argsort(d, kind="stable")
    ds, ys, os_ = d[order], y_idx[order], o[order]
    ks = np.concatenate([[0], np.flatnonzero(np.append(ds[1:] > ds[:-1], True)) + 1])
    to_c = np.concatenate([[0], np.cumsum(ys == c)])           # correct predictions of c after k switches
    if metric == "accuracy":
        lost = np.concatenate([[0], np.cumsum(ys == os_)])     # rows that were right before switching
        scores = ((os_ == ys).sum() + to_c - lost)[ks] / n
    else:  # macro_f1: per-class predicted / TP counts after k switches, all classes at once
        left = np.vstack([np.zeros(n_classes), np.cumsum(np.eye(n_classes)[os_], axis=0)])[ks]
        left_tp = np.vstack([np.zeros(n_classes),
                             np.cumsum(np.eye(n_classes)[os_] * (os_ == ys)[:, None], axis=0)])[ks]
        n_pred = np.bincount(o, minlength=n_classes) - left
        tp = np.bincount(o[o == y_idx], minlength=n_classes) - left_tp
        n_pred[:, c] += ks
        tp[:, c] += to_c[ks]
        scores = _f1(tp, n_pred, np.bincount(y_idx, minlength=n_classes)).mean(axis=1)
    lo = np.where(ks > 0, ds[np.maximum(ks - 1, 0)], ds[0] - 1.0)
    hi = np.where(ks < n, ds[np.minimum(ks, n - 1)], ds[-1] + 1.0)
    mid = hi / 2 + lo / 2                                      # vectorised `_between`
    biases = np.where((lo < mid) & (mid <= hi), mid, hi)
    return scores, biases


def fit_biases(Y, P, metric: str, max_sweeps: int = 10) -> np.ndarray:
    """Multi-class per-class log-probability biases by coordinate ascent from b = 0 (plain argmax).

    Each step is an exact search of one class's bias; a step is taken only if it strictly improves the
    metric as `decide` computes it, so the result is never worse than the untuned argmax."""
    y_idx = Y.argmax(axis=1)
    L = np.log(np.clip(P, EPS, 1))                             # the same transform `decide` applies
    b = np.zeros(Y.shape[1])
    current = decision_metric(metric, Y, decide(P, MULTICLASS, b))
    for _ in range(max_sweeps):
        improved = False
        for c in range(Y.shape[1]):
            scores, biases = _bias_candidates(y_idx, L, b, c, metric)
            best = int(np.argmax(scores))
            if scores[best] <= current + 1e-12:
                continue
            trial = b.copy()
            trial[c] = biases[best]
            actual = decision_metric(metric, Y, decide(P, MULTICLASS, trial))
            if actual > current:                               # guards against floating-point ties
                b, current, improved = trial, actual, True
        if not improved:
            break
    return b


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

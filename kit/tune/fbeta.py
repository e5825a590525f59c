"""Exact F-beta thresholds for multi-label decisions "predict class c iff p_c >= t_c".

Sorting one class's scores once lists every distinct decision set of that class: a prefix of the rows by
decreasing score, cut only between unequal scores (tied scores cannot be separated by a threshold). The
counts any F-beta needs are cumulative sums along that order, so all candidates cost O(n log n) together.

- macro F-beta is a mean of per-class terms: each class's best prefix is the global optimum.
- micro and samples F-beta couple the classes: coordinate ascent from the per-class solution re-sweeps one
  class exactly with the others fixed (micro: only class c's TP / predicted counts change; samples: each
  row's own F-beta changes only where its decision for c flips) and steps only on a strict improvement, so
  the result is never worse than the per-class start and no single class's threshold can improve it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kit.metrics import fbeta_from_counts

MAX_SWEEPS = 20       # coordinate-ascent passes over all classes; it usually stops after 2-4
STEP_TOL = 1e-12      # a step must beat the current metric by more than floating-point noise


class ClassSweep(NamedTuple):
    """Every distinct decision set of one class, best first by score: candidate j selects the rows
    `order[:sizes[j]]` (j = 0: predict nothing), of which `tp[j]` are positives; `thresholds[j]` reproduces
    exactly that selection with `p >= t`."""
    order: np.ndarray
    sizes: np.ndarray
    tp: np.ndarray
    thresholds: np.ndarray


def check_scores(y, p) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=np.float64).ravel(), np.asarray(p, dtype=np.float64).ravel()
    if len(y) != len(p) or len(p) == 0:
        raise ValueError(f"need equal, non-zero lengths of labels and scores, got {len(y)} and {len(p)}")
    if not np.isfinite(p).all():
        raise ValueError("scores contain NaN or infinity")
    return y, p


def class_sweep(y: np.ndarray, p: np.ndarray) -> ClassSweep:
    """The candidates of one class (labels `y`, finite scores `p`).

    A threshold sits midway between the last selected score and the next lower distinct score (0 below the
    lowest; above the highest and at most 1 for "predict nothing"): it selects the same rows in-sample but
    does not sit on a training score, so it generalises better to unseen scores."""
    order = np.argsort(-p)   # not stable: 3x faster, and cuts fall only between unequal scores anyway
    ps = p[order]
    ends = np.flatnonzero(np.append(ps[1:] < ps[:-1], True))    # last row of each run of equal scores
    hi, lo = ps[ends], np.append(ps[1:], min(0.0, ps[-1]))[ends]
    mid = hi / 2 + lo / 2
    cuts = np.where((lo < mid) & (mid <= hi), mid, hi)            # midway when floating point allows
    above = ps[0] / 2 + 0.5
    nothing = above if above > ps[0] else np.nextafter(ps[0], np.inf)
    return ClassSweep(order=order, sizes=np.concatenate([[0], ends + 1]),
                      tp=np.concatenate([[0], np.cumsum(y[order] > 0.5)[ends]]),
                      thresholds=np.concatenate([[nothing], cuts]))


def best_threshold(y, p, beta: float = 1.0) -> tuple[float, float]:
    """Exact F-beta-optimal threshold of one class for the rule "positive iff p >= t"; returns (t, F-beta).
    "Predict nothing" is a candidate (it wins only for a class without positives); ties in F-beta go to
    the higher threshold."""
    y, p = check_scores(y, p)
    sweep = class_sweep(y, p)
    scores = fbeta_from_counts(sweep.tp, sweep.sizes, sweep.tp[-1], beta)
    best = int(np.argmax(scores))
    return float(sweep.thresholds[best]), float(scores[best])


def _per_class_start(sweeps: list[ClassSweep], beta: float) -> np.ndarray:
    """Index of each class's own F-beta-optimal candidate (what `best_threshold` picks)."""
    return np.array([int(np.argmax(fbeta_from_counts(s.tp, s.sizes, s.tp[-1], beta))) for s in sweeps])


def _sweeps(Y, P) -> list[ClassSweep]:
    return [class_sweep(Y[:, c], P[:, c]) for c in range(Y.shape[1])]


def macro_thresholds(Y: np.ndarray, P: np.ndarray, beta: float) -> np.ndarray:
    sweeps = _sweeps(Y, P)
    return np.array([s.thresholds[j] for s, j in zip(sweeps, _per_class_start(sweeps, beta))])


def micro_thresholds(Y: np.ndarray, P: np.ndarray, beta: float, max_sweeps: int = MAX_SWEEPS) -> np.ndarray:
    """Coordinate ascent on micro F-beta = (1+b^2) sum TP / (b^2 sum true + sum predicted)."""
    sweeps = _sweeps(Y, P)
    choice = _per_class_start(sweeps, beta)
    tp = np.array([s.tp[j] for s, j in zip(sweeps, choice)])
    pred = np.array([s.sizes[j] for s, j in zip(sweeps, choice)])
    n_true = int((Y > 0.5).sum())
    current = float(fbeta_from_counts(tp.sum(), pred.sum(), n_true, beta))
    for _ in range(max_sweeps):
        improved = False
        for c, s in enumerate(sweeps):   # integer counts: each candidate's score is exactly what it gives
            scores = fbeta_from_counts(tp.sum() - tp[c] + s.tp, pred.sum() - pred[c] + s.sizes, n_true, beta)
            best = int(np.argmax(scores))
            if scores[best] > current + STEP_TOL:
                choice[c], tp[c], pred[c], current, improved = best, s.tp[best], s.sizes[best], scores[best], True
        if not improved:
            break
    return np.array([s.thresholds[j] for s, j in zip(sweeps, choice)])


def samples_thresholds(Y: np.ndarray, P: np.ndarray, beta: float, max_sweeps: int = MAX_SWEEPS) -> np.ndarray:
    """Coordinate ascent on samples F-beta: the mean over rows of each row's own F-beta."""
    Yb = Y > 0.5
    sweeps = _sweeps(Y, P)
    choice = _per_class_start(sweeps, beta)
    D = np.zeros(Y.shape, dtype=bool)
    for c, (s, j) in enumerate(zip(sweeps, choice)):
        D[s.order[:s.sizes[j]], c] = True
    n_true, tp, pred = Yb.sum(axis=1), (Yb & D).sum(axis=1), D.sum(axis=1)
    current = float(fbeta_from_counts(tp, pred, n_true, beta).mean())
    for _ in range(max_sweeps):
        improved = False
        for c, s in enumerate(sweeps):
            tp_rest, pred_rest = tp - (D[:, c] & Yb[:, c]), pred - D[:, c]      # row counts without class c
            off = fbeta_from_counts(tp_rest, pred_rest, n_true, beta)
            flip_gain = fbeta_from_counts(tp_rest + Yb[:, c], pred_rest + 1, n_true, beta) - off
            gains = np.concatenate([[0.0], np.cumsum(flip_gain[s.order])])[s.sizes]
            best = int(np.argmax(gains))
            if (off.sum() + gains[best]) / len(Y) <= current + STEP_TOL:
                continue
            column = np.zeros(len(Y), dtype=bool)
            column[s.order[:s.sizes[best]]] = True
            new_tp, new_pred = tp_rest + (column & Yb[:, c]), pred_rest + column
            actual = float(fbeta_from_counts(new_tp, new_pred, n_true, beta).mean())
            if actual > current:          # the cumulative sum's rounding must not fake an improvement
                D[:, c], tp, pred, choice[c], current, improved = column, new_tp, new_pred, best, actual, True
        if not improved:
            break
    return np.array([s.thresholds[j] for s, j in zip(sweeps, choice)])


THRESHOLDS_BY_AVERAGE = {"macro": macro_thresholds, "micro": micro_thresholds, "samples": samples_thresholds}

"""Multi-class decision biases: predict argmax(log p + b) with b fitted by exact coordinate ascent.

Adding a bias to one class's log-probability moves rows into or out of that class only at the
breakpoints where it overtakes a row's best other class; between breakpoints the decisions do not
change, so a 1-D search over the sorted breakpoints is exact. `kit.metrics.decide` applies the biases.
Metrics: accuracy, macro F-beta for any beta (per class (1+b^2) TP / (b^2 true + predicted)).
"""
from __future__ import annotations

import numpy as np

from kit.metrics import EPS, fbeta_from_counts, parse_metric

BREAK_TOL = 1e-9   # relative gap below which two rows' breakpoints cannot be separated by a bias


def _top2(biased):
    """Per row: index and value of the best and of the second-best column (first index wins ties, like
    np.argmax), so "best column other than c" is O(n) for any c."""
    rows = np.arange(len(biased))
    first = np.argmax(biased, axis=1)
    rest = biased.copy()
    rest[rows, first] = -np.inf
    second = np.argmax(rest, axis=1)
    return first, biased[rows, first], second, rest[rows, second]


def _index_metric(y_idx, pred, n_classes, beta):
    """accuracy (beta None) / macro F-beta of predicted class indices (= `decision_metric` on one-hot rows)."""
    if beta is None:
        return float(np.mean(pred == y_idx))
    tp = np.bincount(pred[pred == y_idx], minlength=n_classes)
    n_pred, n_true = np.bincount(pred, minlength=n_classes), np.bincount(y_idx, minlength=n_classes)
    return float(fbeta_from_counts(tp, n_pred, n_true, beta).mean())


def _bias_candidates(y_idx, log_p_c, other, other_best, c, beta, n_classes):
    """Exact 1-D search of class c's bias, other biases fixed: (metric per candidate, candidate biases);
    beta None scores accuracy, else macro F-beta.

    Row i switches from its best other class `other` to c once b_c exceeds d_i = other_best - log p_ic, so
    sorting d gives every distinct decision set (k = rows switched, only at ends of runs of tied d). Each
    switch changes the counts of two classes only, so all candidates cost O(n log n) together."""
    n = len(y_idx)
    d = other_best - log_p_c
    order = np.argsort(d, kind="stable")
    ds, ys, os_ = d[order], y_idx[order], other[order]
    # breakpoints closer than BREAK_TOL count as one: `log p_ic + b > best other` (what decide computes)
    # and `b > d_i` can disagree by rounding right at a breakpoint, never a tolerance away from it
    apart = ds[1:] - ds[:-1] > BREAK_TOL * np.maximum(1.0, np.abs(ds[1:]))
    ks = np.concatenate([[0], np.flatnonzero(np.append(apart, True)) + 1])
    to_c = np.concatenate([[0], np.cumsum(ys == c)])           # correct predictions of c after k switches
    was_right = ys == os_
    if beta is None:
        scores = (was_right.sum() + to_c - np.concatenate([[0], np.cumsum(was_right)]))[ks] / n
    else:  # macro F-beta: class os_[i] loses its r-th predicted row (and a TP if it was right) at switch i
        n_true = np.bincount(y_idx, minlength=n_classes)
        n_pred0 = np.bincount(other, minlength=n_classes)
        tp0 = np.bincount(other[other == y_idx], minlength=n_classes)
        small = os_.astype(np.int16) if n_classes < 2**15 else os_    # int16: numpy's stable sort is radix
        grouped = np.argsort(small, kind="stable")             # switch positions grouped by losing class
        starts = np.searchsorted(os_[grouped], os_[grouped])   # first grouped index of each row's class
        rank, lost_tp = np.empty(n), np.empty(n)
        rank[grouped] = np.arange(n) - starts + 1
        cum = np.cumsum(was_right[grouped])
        lost_tp[grouped] = cum - (cum - was_right[grouped])[starts]
        f_after = fbeta_from_counts(tp0[os_] - lost_tp, n_pred0[os_] - rank, n_true[os_], beta)
        f_before = fbeta_from_counts(tp0[os_] - lost_tp + was_right, n_pred0[os_] - rank + 1, n_true[os_], beta)
        deltas = np.concatenate([[0], np.cumsum(f_after - f_before)])
        others = fbeta_from_counts(tp0, n_pred0, n_true, beta).sum() + deltas
        scores = (others[ks] + fbeta_from_counts(to_c[ks], ks, n_true[c], beta)) / n_classes
    lo = np.where(ks > 0, ds[np.maximum(ks - 1, 0)], ds[0] - 1.0)
    hi = np.where(ks < n, ds[np.minimum(ks, n - 1)], ds[-1] + 1.0)
    return scores, hi / 2 + lo / 2         # midway between breakpoints, as kit.tune.fbeta.class_sweep


def fit_biases(Y, P, metric: str, max_sweeps: int = 5) -> np.ndarray:
    """Multi-class per-class log-probability biases by coordinate ascent from b = 0 (plain argmax), for
    `metric` accuracy or macro_fB.

    Each step is an exact search of one class's bias; it is taken only if it strictly improves the
    metric of the argmax `decide` computes (same log-clip transform), so it is never worse than b = 0."""
    average, beta = parse_metric(metric)
    if average not in ("accuracy", "macro"):
        raise ValueError(f"multi-class biases fit accuracy or macro F-beta, not {metric!r}")
    y_idx, n_classes = Y.argmax(axis=1), Y.shape[1]
    b = np.zeros(n_classes)
    if n_classes < 2:
        return b
    L = np.log(np.clip(P, EPS, 1))
    biased = L.copy()
    top = _top2(biased)
    current = _index_metric(y_idx, top[0], n_classes, beta)
    for _ in range(max_sweeps):
        improved = False
        for c in range(n_classes):
            first, v1, second, v2 = top
            excluded = first == c
            scores, biases = _bias_candidates(y_idx, L[:, c], np.where(excluded, second, first),
                                              np.where(excluded, v2, v1), c, beta, n_classes)
            best = int(np.argmax(scores))
            if scores[best] <= current + 1e-12:
                continue
            old, b[c] = b[c], biases[best]
            biased[:, c] = L[:, c] + b[c]
            trial = _top2(biased)
            actual = _index_metric(y_idx, trial[0], n_classes, beta)
            if actual > current:                               # guards against floating-point ties
                top, current, improved = trial, actual, True
            else:
                b[c] = old
                biased[:, c] = L[:, c] + b[c]
        if not improved:
            break
    return b

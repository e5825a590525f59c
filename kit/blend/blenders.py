"""Blenders: scikit-learn style estimators that combine several runs' (n, C) probability matrices.

Every blender takes `fit(P_list, Y, folds)` — one OOF matrix per run, the (n, C) 0/1 labels, the fold of
every row — and exposes `oof_`, the blend's honest out-of-fold predictions: a method with parameters
(`weights`, `hill`, `stack`) is refitted once per fold on the other folds' rows and predicts the held-out
fold, exactly like the level-1 models, so the blend's OOF score is never in-sample optimistic. The
parameters used for test (`predict`) are then fitted on all rows (one model, not an average of K).

Default method: `weights`. Its objective (log loss of a convex combination of probabilities) is convex in
the weights, so SLSQP finds the global optimum deterministically, and a smooth proper score leaves the
hard-decision metric to the per-class thresholds tuned afterwards. `hill` greedily optimises the noisy
hard-decision metric itself, which overfits a few hundred OOF rows more easily.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata
from kit.blend.base import _Blender
from kit.metrics import DEFAULT_METRIC, EPS, GREATER_IS_BETTER, MULTICLASS, MULTILABEL, is_better, score
from kit.blend.stacking import StackBlender

DEFAULT_METHOD = "weights"


class MeanBlender(_Blender):
    """Plain average of the runs' probabilities (no parameters)."""
    per_fold = False

    def __init__(self, task: str = MULTILABEL):
        self.task = task

    def _fit_all(self, P, Y):
        self.weights_ = np.full(len(P), 1 / len(P))
        return self


class RankBlender(_Blender):
    """Average of per-class ranks, each scaled to [0, 1] (parameter-free; fit only stores the references).

    A prediction's rank is its position in that run's OOF distribution for the class (mid-rank / n, the
    empirical CDF). Test predictions are ranked against the same OOF distribution, not within test, so
    OOF and test land on one scale and thresholds tuned on the blend's OOF transfer to its test. Ranks are
    not probabilities (0.5 means "above the median"): tune thresholds on a rank blend before submitting. For
    multi-class tasks the rows are renormalised to sum to 1; the argmax of per-class ranks is not calibrated
    across classes, so prefer `mean`, `weights` or `stack` there.
    """
    per_fold = False

    def __init__(self, task: str = MULTILABEL):
        self.task = task

    def _fit_all(self, P, Y):
        self.weights_ = np.full(len(P), 1 / len(P))
        self.references_ = np.sort(P, axis=1)  # (R, n, C), sorted along rows
        return self

    def recipe_(self):
        return ({"kind": "rank", "task": self.task, "weights": [float(w) for w in self.weights_]},
                {"references": self.references_})


def _log_loss_and_grad(w, P, Y, task):
    """Log loss of sum_r w_r P_r and its gradient in w (the blend is a convex combination)."""
    B = np.clip(np.tensordot(w, P, axes=1), EPS, 1 - EPS)
    if task == MULTICLASS:
        loss = -np.mean(np.sum(Y * np.log(B), axis=1))
        grad = -np.array([np.mean(np.sum(Y * Pr / B, axis=1)) for Pr in P])
    else:
        loss = -np.mean(Y * np.log(B) + (1 - Y) * np.log(1 - B))
        grad = -np.array([np.mean(Y * Pr / B - (1 - Y) * Pr / (1 - B)) for Pr in P])
    return loss, grad


class WeightsBlender(_Blender):
    """Non-negative weights summing to 1 that minimise the OOF log loss of the weighted average (SLSQP)."""

    def __init__(self, task: str = MULTILABEL, max_iter: int = 200):
        self.task = task
        self.max_iter = max_iter

    def _fit_all(self, P, Y):
        R = len(P)
        if R == 1:
            self.weights_ = np.ones(1)
            return self
        sums_to_one = {"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(R)}
        result = minimize(_log_loss_and_grad, np.full(R, 1 / R), args=(P, Y, self.task), jac=True,
                          method="SLSQP", bounds=[(0, 1)] * R, constraints=[sums_to_one],
                          options={"maxiter": self.max_iter, "ftol": 1e-10})
        w = np.clip(result.x, 0, None)  # SLSQP may step a hair below a bound
        self.weights_ = w / w.sum()
        self.loss_ = float(result.fun)
        return self


def rank_auc(Y: np.ndarray, P: np.ndarray) -> float:
    """kit.metrics.mean_auc via the Mann-Whitney rank sum (same value, ties averaged), for all classes at
    once: hill climbing evaluates it thousands of times and sklearn's per-class call dominates the cost."""
    n_pos = Y.sum(axis=0)
    valid = (n_pos > 0) & (n_pos < len(Y))
    if not valid.any():
        return float("nan")
    ranks = rankdata(P[:, valid], axis=0)
    n_pos, n_neg = n_pos[valid], len(Y) - n_pos[valid]
    return float(np.mean(((ranks * Y[:, valid]).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))


def _metric(metric, Y, P, task):
    return rank_auc(Y, P) if metric == "auc" else score(metric, Y, P, task)


def _greedy_selection(P, Y, task, metric, n_init, max_iter, candidates):
    """Caruana ensemble selection with replacement among `candidates`; returns counts per run."""
    singles = {r: _metric(metric, Y, P[r], task) for r in candidates}
    order = sorted(candidates, key=lambda r: singles[r], reverse=GREATER_IS_BETTER[metric])
    counts = np.zeros(len(P))
    counts[order[:max(1, n_init)]] = 1
    total = np.tensordot(counts, P, axes=1)
    best = _metric(metric, Y, total / counts.sum(), task)
    for _ in range(max_iter):
        step_best, step_run = best, None
        for r in candidates:
            s = _metric(metric, Y, (total + P[r]) / (counts.sum() + 1), task)
            if is_better(metric, s, step_best):
                step_best, step_run = s, r
        if step_run is None:  # no addition improves the metric: stop
            break
        counts[step_run] += 1
        total += P[step_run]
        best = step_best
    return counts, best


class HillBlender(_Blender):
    """Caruana ensemble selection with replacement, hill-climbing the task metric on OOF.

    Starts from the best `n_init` runs, then greedily adds (with replacement) the run whose addition most
    improves `metric`, stopping when nothing improves it or after `max_iter` additions. With `n_bags` > 0
    the selection is repeated on random subsets of `bag_fraction` of the runs and the counts are summed.
    `weights_` = selection counts normalised; `score_` = the in-sample metric of the final selection,
    `single_scores_` = each run's metric on the same rows.
    """

    def __init__(self, task: str = MULTILABEL, metric: str | None = None, n_init: int = 1,
                 max_iter: int = 100, n_bags: int = 0, bag_fraction: float = 0.5, seed: int = 0):
        self.task = task
        self.metric = metric
        self.n_init = n_init
        self.max_iter = max_iter
        self.n_bags = n_bags
        self.bag_fraction = bag_fraction
        self.seed = seed

    def _fit_all(self, P, Y):
        metric = self.metric or DEFAULT_METRIC[self.task]
        R = len(P)
        counts = np.zeros(R)
        if self.n_bags > 0:
            rng = np.random.default_rng(self.seed)
            size = max(1, int(np.ceil(self.bag_fraction * R)))
            for _ in range(self.n_bags):
                bag = sorted(rng.choice(R, size=size, replace=False).tolist())
                c, _ = _greedy_selection(P, Y, self.task, metric, self.n_init, self.max_iter, bag)
                counts += c / c.sum()
        else:
            counts, _ = _greedy_selection(P, Y, self.task, metric, self.n_init, self.max_iter, list(range(R)))
        self.counts_ = counts
        self.weights_ = counts / counts.sum()
        self.single_scores_ = np.array([score(metric, Y, P[r], self.task) for r in range(R)])
        self.score_ = score(metric, Y, self._combine(P), self.task)
        return self


BLENDERS = {"mean": MeanBlender, "rank": RankBlender, "weights": WeightsBlender, "hill": HillBlender,
            "stack": StackBlender}


def make_blender(method: str, task: str, **params) -> _Blender:
    """The blender named `method` for `task`; `params` are its constructor arguments."""
    if method not in BLENDERS:
        raise ValueError(f"unknown blend method {method!r}; choose from {sorted(BLENDERS)}")
    cls = BLENDERS[method]
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(f"method {method!r} has no parameter(s) {unknown}; it takes {cls._get_param_names()}")
    return cls(task=task, **params)

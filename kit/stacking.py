"""Stacking: a level-2 scikit-learn model on the runs' logits, fitted across the runs' own folds."""
from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from kit.blend_base import _Blender
from kit.metrics import MULTICLASS, MULTILABEL


def _logits(P: np.ndarray, task: str) -> np.ndarray:
    P = np.clip(P, 1e-6, 1 - 1e-6)
    return np.log(P) if task == MULTICLASS else np.log(P / (1 - P))


class StackBlender(_Blender):
    """A level-2 model on the runs' logits, trained across the same folds as the runs.

    Multi-label: one binary model per class on the R runs' logits of that class. Multi-class: one
    multinomial model on all R x C log-probabilities. `estimator` (default LogisticRegression(C=C)) is
    cloned per class / per fold. A class whose training rows are all one label (multi-class: rows all one
    class) gets the plain mean of the runs' probabilities instead (nothing to learn); a multi-class class
    absent from the training rows gets probability 0. `coef_` is (C, R) for multi-label, (C, R*C) for
    multi-class (features run-major, then class), NaN where no model was fitted; `fold_weights_` holds each
    fold model's `coef_`. For test, one model per class is refitted on all rows (not an average of K).
    """

    def __init__(self, task: str = MULTILABEL, C: float = 1.0, estimator=None):
        self.task = task
        self.C = C
        self.estimator = estimator

    def _new_model(self):
        if self.estimator is not None:
            return clone(self.estimator)
        return LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=1000)  # exact, few iterations

    def _fit_all(self, P, Y):
        R, n, C = P.shape
        X = _logits(P, self.task)
        if self.task == MULTICLASS:
            y = Y.argmax(1)
            self.models_ = [self._new_model().fit(X.transpose(1, 0, 2).reshape(n, R * C), y)
                            if len(np.unique(y)) > 1 else None]
        else:
            self.models_ = [self._new_model().fit(X[:, :, c].T, Y[:, c]) if 0 < Y[:, c].sum() < n else None
                            for c in range(C)]
        self.coef_, self.intercept_ = self._coefficients(R, C)
        return self

    def _coefficients(self, R, C):
        if self.task == MULTICLASS:
            model, coef, icpt = self.models_[0], np.full((C, R * C), np.nan), np.full(C, np.nan)
            if model is not None and hasattr(model, "coef_"):
                rows = np.asarray(model.classes_, dtype=int)
                if len(rows) == 2:  # sklearn stores a binary problem as one row for the second class
                    coef[rows[1]], icpt[rows[1]] = model.coef_[0], model.intercept_[0]
                else:
                    coef[rows], icpt[rows] = model.coef_, model.intercept_
            return coef, icpt
        coef, icpt = np.full((C, R), np.nan), np.full(C, np.nan)
        for c, model in enumerate(self.models_):
            if model is not None and hasattr(model, "coef_"):
                coef[c], icpt[c] = model.coef_[0], model.intercept_[0]
        return coef, icpt

    def _combine(self, P):
        R, n, C = P.shape
        X, mean = _logits(P, self.task), P.mean(axis=0)
        if self.task == MULTICLASS:
            model, out = self.models_[0], np.zeros((n, C))
            if model is None:
                return mean
            seen = np.asarray(model.classes_, dtype=int)
            out[:, seen] = model.predict_proba(X.transpose(1, 0, 2).reshape(n, R * C))
            return out
        return np.column_stack([mean[:, c] if m is None else m.predict_proba(X[:, :, c].T)[:, 1]
                                for c, m in enumerate(self.models_)])

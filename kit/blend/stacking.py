"""Stacking: a level-2 logistic regression on the runs' logits, fitted across the runs' own folds."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from kit.blend.base import _Blender
from kit.blend.recipe import stack_features
from kit.metrics import MULTICLASS, MULTILABEL

FEATURES = ("class", "all")


class StackBlender(_Blender):
    """A level-2 model on the runs' logits, trained across the same folds as the runs.

    Multi-label, `features="class"`: one binary model per class on the R runs' logits of that class;
    `features="all"`: one binary model per class on all R x C logits, so a class can learn from the others
    (label correlation: haze vs clear, a cell type vs its usual neighbours). Multi-class: one multinomial
    model on all R x C log-probabilities. `C` is the inverse L2 strength. A class whose training rows are all
    one label (multi-class: rows all one class) gets the plain mean of the runs' probabilities instead
    (nothing to learn); a multi-class class absent from the training rows gets probability 0. `coef_` is
    (C, F) with F = R (multi-label "class") or R*C (features run-major, then class), NaN where no model was
    fitted; `fold_weights_` holds each fold model's `coef_`. For test, one model per class is refitted on all
    rows (not an average of K). Predictions go through kit.blend.recipe, like kit.predict's.
    """

    def __init__(self, task: str = MULTILABEL, C: float = 1.0, features: str = "class"):
        self.task = task
        self.C = C
        self.features = features

    def _new_model(self):
        return LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=1000)  # exact, few iterations

    def _fit_all(self, P, Y):
        if self.features not in FEATURES:
            raise ValueError(f"stack features must be one of {FEATURES}, got {self.features!r}")
        R, n, C = P.shape
        X = stack_features(P, self.task, self.features)
        width = X.shape[-1]
        self.coef_, self.intercept_ = np.full((C, width), np.nan), np.full(C, np.nan)
        if self.task == MULTICLASS:
            y = Y.argmax(1)
            if len(np.unique(y)) > 1:
                model = self._new_model().fit(X, y)
                rows = np.asarray(model.classes_, dtype=int)
                if len(rows) == 2:  # sklearn's binary form: one unit for the second class = softmax([0, z])
                    self.coef_[rows] = np.vstack([np.zeros(width), model.coef_[0]])
                    self.intercept_[rows] = [0.0, model.intercept_[0]]
                else:
                    self.coef_[rows], self.intercept_[rows] = model.coef_, model.intercept_
            return self
        for c in range(C):
            if 0 < Y[:, c].sum() < n:
                model = self._new_model().fit(X[c] if self.features == "class" else X, Y[:, c])
                self.coef_[c], self.intercept_[c] = model.coef_[0], model.intercept_[0]
        return self

    def recipe_(self):
        fitted = ~np.isnan(self.intercept_)
        return ({"kind": "stack", "task": self.task, "features": self.features},
                {"coef": np.nan_to_num(self.coef_), "intercept": np.nan_to_num(self.intercept_),
                 "fitted": fitted})

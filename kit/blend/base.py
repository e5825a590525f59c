"""The machinery every blender shares: per-fold refits for an honest `oof_`, then one fit on all rows."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone

from kit.blend.recipe import combine
from kit.metrics import MULTICLASS, MULTILABEL


def as_stack(P_list) -> np.ndarray:
    """List of R (n, C) matrices -> (R, n, C) array, with shape checks."""
    if len(P_list) == 0:
        raise ValueError("need at least one prediction matrix to blend")
    shapes = {np.shape(P) for P in P_list}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every prediction matrix must have the same (n, C) shape; got {sorted(shapes)}")
    return np.stack([np.asarray(P, dtype=np.float64) for P in P_list])


class _Blender(BaseEstimator):
    """Shared fit/predict: per-fold refits for honest `oof_`, then one fit on all rows for `predict`."""
    per_fold = True  # False for parameter-free methods: their OOF is just the combination of the OOFs

    def fit(self, P_list, Y, folds):
        P, Y, folds = as_stack(P_list), np.asarray(Y, dtype=np.float64), np.asarray(folds)
        if Y.shape != P.shape[1:] or folds.shape != (P.shape[1],):
            raise ValueError(f"labels {Y.shape} / folds {folds.shape} do not match predictions {P.shape[1:]}")
        if self.task not in (MULTILABEL, MULTICLASS):
            raise ValueError(f"unknown task {self.task!r}")
        if self.per_fold and len(np.unique(folds)) < 2:
            raise ValueError(f"{type(self).__name__} needs 2+ folds for an honest OOF; got {np.unique(folds)}")
        self.n_runs_ = len(P)
        self.fold_weights_ = {}
        if self.per_fold:
            self.oof_ = np.empty(P.shape[1:])
            for k in np.unique(folds):
                held = folds == k
                part = clone(self)._fit_all(P[:, ~held], Y[~held])
                self.oof_[held] = part._combine(P[:, held])
                self.fold_weights_[int(k)] = part.coef_ if hasattr(part, "coef_") else part.weights_
            self._fit_all(P, Y)
        else:
            self._fit_all(P, Y)
            self.oof_ = self._combine(P)
        return self

    def predict(self, P_list) -> np.ndarray:
        if not hasattr(self, "n_runs_"):
            raise ValueError(f"{type(self).__name__} is not fitted yet; call fit first")
        P = as_stack(P_list)
        if len(P) != self.n_runs_:
            raise ValueError(f"fitted on {self.n_runs_} runs, got {len(P)}")
        return self._combine(P)

    def recipe_(self) -> tuple[dict, dict]:
        """The fitted blend as data (kit.blend.recipe): JSON-able parameters and named arrays."""
        return {"kind": "weights", "task": self.task, "weights": [float(w) for w in self.weights_]}, {}

    def _combine(self, P: np.ndarray) -> np.ndarray:
        recipe, arrays = self.recipe_()
        return combine(recipe, arrays, P)

"""A fitted blend as data: what `kit.predict` applies to fresh member predictions, with numpy alone.

Every blender's own predictions go through `combine` too, so a blend's `test.csv` written by `kit.blend`
and `kit.predict` on the same images agree by construction. A recipe is a JSON-able dict plus named arrays:
  weights  (mean, weights, hill): the blend is sum_r w_r P_r
  rank     (rank): each run's per-class rank against its sorted OOF (`references`), weighted
  stack    (stack): logistic models on the runs' logits (`coef`, `intercept`; sigmoid per class for
           multi-label, softmax for multi-class); a class without a model gets the mean of the runs
Saved as `recipe.json` + `recipe.npz` beside the blend's other files.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MULTILABEL, MULTICLASS = "multilabel", "multiclass"  # as kit.metrics names them (no sklearn import here)
EPS = 1e-7


def logits(P: np.ndarray, task: str) -> np.ndarray:
    """Log-odds (multi-label) or log-probabilities (multi-class), clipped so 0 and 1 stay finite."""
    P = np.clip(P, 1e-6, 1 - 1e-6)
    return np.log(P) if task == MULTICLASS else np.log(P / (1 - P))


def stack_features(P: np.ndarray, task: str, features: str) -> np.ndarray:
    """(n, F) level-2 inputs from (R, n, C) predictions: per class c the R logits of c ("class", multi-label),
    or all R x C logits run-major ("all"; multi-class always) -> (C, n, R) or (n, R*C)."""
    R, n, C = P.shape
    X = logits(P, task)
    if task == MULTICLASS or features == "all":
        return X.transpose(1, 0, 2).reshape(n, R * C)
    return X.transpose(2, 1, 0)  # (C, n, R): class c's model sees its own column of every run


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def combine(recipe: dict, arrays: dict, P: np.ndarray) -> np.ndarray:
    """(n, C) blend of the (R, n, C) member predictions `P`, in the members' order `recipe["runs"]`."""
    method, task = recipe["kind"], recipe["task"]
    if method == "weights":
        return np.tensordot(np.asarray(recipe["weights"]), P, axes=1)
    if method == "rank":
        ref = arrays["references"]
        ranks = np.empty_like(P)
        for r in range(P.shape[0]):
            for c in range(P.shape[2]):
                low = np.searchsorted(ref[r, :, c], P[r, :, c], side="left")
                high = np.searchsorted(ref[r, :, c], P[r, :, c], side="right")
                ranks[r, :, c] = (low + high) / (2 * ref.shape[1])
        out = np.tensordot(np.asarray(recipe["weights"]), ranks, axes=1)
        return out / np.maximum(out.sum(axis=1, keepdims=True), EPS) if task == MULTICLASS else out
    if method == "stack":
        return _stack(recipe, arrays, P)
    raise ValueError(f"unknown recipe kind {method!r}")


def _stack(recipe: dict, arrays: dict, P: np.ndarray) -> np.ndarray:
    task, features = recipe["task"], recipe.get("features", "class")
    coef, intercept, fitted = arrays["coef"], arrays["intercept"], arrays["fitted"].astype(bool)
    X, mean = stack_features(P, task, features), P.mean(axis=0)
    if task == MULTICLASS:
        if not fitted.any():
            return mean
        z = X @ coef[fitted].T + intercept[fitted]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        out = np.zeros_like(mean)
        out[:, fitted] = e / e.sum(axis=1, keepdims=True)
        return out
    out = mean.copy()
    for c in np.flatnonzero(fitted):
        x = X[c] if features == "class" else X
        out[:, c] = _sigmoid(x @ coef[c] + intercept[c])
    return out


def write_recipe(out_dir: Path, recipe: dict, arrays: dict) -> None:
    """recipe.json (+ recipe.npz when there are arrays), each written atomically."""
    from kit.runs import atomic_write, write_json

    write_json(recipe, Path(out_dir) / "recipe.json")
    if arrays:
        atomic_write(Path(out_dir) / "recipe.npz", lambda tmp: np.savez(open(tmp, "wb"), **arrays))


def read_recipe(blend_dir: Path) -> tuple[dict, dict]:
    blend_dir = Path(blend_dir)
    path = blend_dir / "recipe.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: re-run kit.blend to save the blend's recipe")
    recipe = json.loads(path.read_text())
    arrays = {}
    if (blend_dir / "recipe.npz").exists():
        with np.load(blend_dir / "recipe.npz") as data:
            arrays = {k: data[k] for k in data.files}
    return recipe, arrays

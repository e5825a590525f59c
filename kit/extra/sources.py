"""Predictions of a source run or blend for fold k, made only by models that never saw fold k's rows.

A run's fold-k models trained on every fold but k; a blend's fold-k combination is its members' fold-k
predictions (recursively) through the blend's fold-k recipe: the blend's method refitted on its members' OOF
without fold k's rows, exactly as kit.blend fitted it for fold k's rows of the blend's own OOF. So a target
made here for fold k is as honest as the source's OOF of fold k.

    fold_test_predictions     honest pseudo-labels: fold<k>/test.csv of each member run
    fold_train_predictions    honest distillation targets: each member run's fold<k>/best.pt predicting the
                              student's fold-k training rows (the rows those very models trained on)
    leaky_test_predictions    the source's fold-averaged test.csv (every fold model saw fold k): comparison only
    oof_train_predictions     the teacher's OOF (row j's value from the fold that held j out, whose model
                              trained on fold k): the common practice, leaky, comparison only
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.blend.recipe import combine
from kit.runs import FOLD, ID, file_sha256, load_run, read_json
from kit.runs import leaf_runs as find_leaf_runs


class SourceError(ValueError):
    """A pseudo-label source or teacher that cannot give honest targets for this run."""


def source_config(oof_dir: Path, name: str) -> dict:
    path = Path(oof_dir) / name / "config.json"
    if not path.exists():
        raise SourceError(f"{Path(oof_dir) / name}: no such run or blend (no config.json)")
    return read_json(path)


def leaf_runs(oof_dir: Path, name: str) -> dict[str, dict]:
    """{run name: config} of every training run under `name` (itself, or a blend's members, recursively)."""
    return find_leaf_runs(oof_dir, name, source_config)


def fold_recipe(oof_dir: Path, name: str, fold: int) -> tuple[dict, dict]:
    """The blend `name`'s recipe for fold `fold`: its method refitted on the members' OOF of the other folds."""
    from kit.blend.blenders import make_blender  # scikit-learn/scipy only when a blend is a source

    config = source_config(oof_dir, name)
    members = [load_run(Path(oof_dir) / m) for m in config["runs"]]
    classes = config["classes"]
    P = np.stack([m.oof[classes].to_numpy(np.float64) for m in members])
    Y, folds = members[0].truth[classes].to_numpy(np.float64), members[0].oof[FOLD].to_numpy()
    params = {k: v for k, v in config.get("params", {}).items() if k != "task"}
    keep = folds != fold
    return make_blender(config["method"], config["task"], **params)._fit_all(P[:, keep], Y[keep]).recipe_()


def combined(oof_dir: Path, name: str, fold: int, leaf) -> np.ndarray:
    """`leaf(run, config)` -> that run's (n, C) predictions in its classes' order; a blend combines its members
    with its fold-`fold` recipe. Returned in `name`'s classes' order."""
    config = source_config(oof_dir, name)
    if config.get("kind", "run") == "run":
        return leaf(name, config)
    parts = []
    for member in config["runs"]:
        member_classes = source_config(oof_dir, member)["classes"]
        P = combined(oof_dir, member, fold, leaf)
        parts.append(P[:, [member_classes.index(c) for c in config["classes"]]])
    recipe, arrays = fold_recipe(oof_dir, name, fold)
    return combine(recipe, arrays, np.stack(parts))


def _aligned(path: Path, ids, classes: list[str]) -> np.ndarray:
    if not path.exists():
        raise SourceError(f"{path} is missing: the source has no test predictions of that fold")
    frame = pd.read_csv(path, dtype={ID: str}).set_index(ID)
    missing = sorted(set(map(str, ids)) - set(frame.index))
    if missing or len(frame) != len(ids):
        raise SourceError(f"{path}: test ids differ from this run's test ids ({len(missing)} missing, e.g. "
                          f"{missing[:5]}; {len(frame)} rows for {len(ids)} test ids)")
    return frame.loc[list(map(str, ids)), classes].to_numpy(np.float64)


def fold_test_predictions(oof_dir: Path, name: str, fold: int, test_ids) -> np.ndarray:
    def leaf(run, config):
        return _aligned(Path(oof_dir) / run / f"fold{fold}" / "test.csv", test_ids, config["classes"])
    return combined(oof_dir, name, fold, leaf)


def leaky_test_predictions(oof_dir: Path, name: str, test_ids) -> np.ndarray:
    return _aligned(Path(oof_dir) / name / "test.csv", test_ids, source_config(oof_dir, name)["classes"])


def oof_train_predictions(oof_dir: Path, name: str, train_ids) -> np.ndarray:
    run = load_run(Path(oof_dir) / name)
    return run.oof.set_index(ID).loc[list(map(str, train_ids)), run.classes].to_numpy(np.float64)


def fold_train_predictions(oof_dir: Path, name: str, fold: int, train_paths: list, train_ids, rows: np.ndarray,
                           cache_dir: str, device: str | None, log=print) -> np.ndarray:
    """Every member run's fold-`fold` checkpoint predicting the train images `rows` (at its own image size,
    channels and TTA; all train images go through the cache once per size)."""
    from kit.cache import cached_images
    from kit.config import config_from_dict
    from kit.inference import predict, tta_views
    from kit.predict import load_fold_model  # torch and timm only when a teacher is used

    def leaf(run, config):
        cfg = config_from_dict(config["train"])
        images = cached_images(train_paths, cfg.img_size, cache_dir, cfg.input_channels, train_ids, log=log)
        model, runtime = load_fold_model(Path(oof_dir) / run / f"fold{fold}" / "best.pt", cfg,
                                         len(config["classes"]), device)
        batch = cfg.eval_batch_size or 4 * cfg.batch_size
        return predict(model, images, config["task"], runtime, batch, tta_views(cfg.symmetry, cfg.tta),
                       cfg.tta_scales or (1.0,), rows=rows)
    return combined(oof_dir, name, fold, leaf)


def fingerprint(oof_dir: Path, name: str, files_of_run) -> dict[str, str]:
    """sha256 of every file the targets are made of (`files_of_run(run dir)` per leaf run, the recipes and
    OOF of blends), so a resumed run refuses a source that changed under it."""
    oof_dir, out = Path(oof_dir), {}
    for run in leaf_runs(oof_dir, name):
        for path in files_of_run(Path(oof_dir) / run):
            if path.exists():
                out[str(path.relative_to(oof_dir))] = file_sha256(path)
    stack = [name]
    while stack:
        config = source_config(oof_dir, stack.pop())
        if config.get("kind", "run") != "run":
            stack += config["runs"]
            for run in config["runs"]:
                out[f"{run}/oof.csv"] = file_sha256(Path(oof_dir) / run / "oof.csv")
    return out

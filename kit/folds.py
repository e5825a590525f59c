"""Multilabel-stratified K-fold assignment (iterstrat), optionally keeping groups whole, and the folds file.

One algorithm for both tasks: a multi-class Y is one-hot, so stratifying its columns stratifies the classes.
The folds file `folds/<data>-k<K>-s<seed>[-g<group>]-<hash8>.csv` is written once and then only reused:
every run and blend on the same data, K and seed shares it, and it is the ground truth for OOF scoring.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from kit.data import Competition, DataError
from kit.runs import FOLD, ID, read_folds, write_csv


def _stratified_folds(Y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    Y = np.asarray(Y) > 0
    if Y.shape[1] == 1:  # iterstrat wants a multilabel indicator matrix, not a single binary column
        Y = np.hstack([Y, ~Y])
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.full(len(Y), -1, dtype=np.int64)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros((len(Y), 1)), Y)):
        fold[held_out] = k
    return fold


def make_folds(Y: np.ndarray, n_folds: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """The fold (0..n_folds-1) of every row of the (n, C) 0/1 matrix `Y`.

    With `groups`, the split is made on groups (a group's label vector = any positive among its rows),
    so all rows of a group land in the same fold.
    """
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise DataError(f"labels must be an (n, C) matrix, got shape {Y.shape}")
    if n_folds < 2:
        raise DataError(f"n_folds must be at least 2, got {n_folds}")
    if groups is None:
        if len(Y) < n_folds:
            raise DataError(f"{len(Y)} rows cannot fill {n_folds} folds")
        return _stratified_folds(Y, n_folds, seed)
    groups = np.asarray(groups)
    if len(groups) != len(Y):
        raise DataError(f"{len(groups)} group values for {len(Y)} rows")
    group_index, group_names = pd.factorize(pd.Series(groups))  # groups in order of first appearance
    if len(group_names) < n_folds:
        raise DataError(f"{len(group_names)} groups cannot fill {n_folds} folds")
    group_Y = np.zeros((len(group_names), Y.shape[1]), dtype=bool)
    np.logical_or.at(group_Y, group_index, Y > 0)
    return _stratified_folds(group_Y, n_folds, seed)[group_index]


def _data_hash(comp: Competition) -> str:
    """sha256 over ids, class names, labels (and groups): a different data set gets a different file."""
    h = hashlib.sha256()
    h.update(("\x1f".join(comp.classes) + "\n").encode())
    labels = (np.asarray(comp.Y) > 0).astype(np.uint8)
    groups = comp.groups if comp.groups is not None else [None] * len(labels)
    for i, row, g in zip(comp.train_ids, labels, groups):
        h.update(f"{i}\x1f{''.join(map(str, row))}\x1f{'' if g is None else g}\n".encode())
    return h.hexdigest()


def folds_file_name(comp: Competition, n_folds: int, seed: int) -> str:
    group = f"-g{comp.group_col}" if comp.groups is not None and comp.group_col else ""
    return f"{comp.name}-k{n_folds}-s{seed}{group}-{_data_hash(comp)[:8]}.csv"


def _check_matches(folds: pd.DataFrame, comp: Competition, n_folds: int, path: Path) -> None:
    want = [ID, FOLD, *comp.classes]
    if list(folds.columns) != want:
        raise DataError(f"{path}: columns {list(folds.columns)} != expected {want}")
    ids = folds[ID].to_numpy(dtype=str)
    if len(ids) != len(comp.train_ids) or not (ids == comp.train_ids).all():
        raise DataError(f"{path}: ids differ from the train ids of {comp.root / 'train.csv'}")
    labels = folds[comp.classes].to_numpy()
    differs = comp.train_ids[(labels != comp.Y).any(axis=1)]
    if len(differs):
        raise DataError(f"{path}: labels differ from {comp.root / 'train.csv'} at ids {differs[:10].tolist()} "
                        f"({len(differs)} rows)")
    outside = ~folds[FOLD].isin(range(n_folds))
    if outside.any():
        raise DataError(f"{path}: fold values outside 0..{n_folds - 1} at ids {ids[outside][:10].tolist()}")


def get_or_create_folds(comp: Competition, n_folds: int, seed: int, folds_dir: str | Path) -> Path:
    """Path of the folds file for (data, K, seed[, groups]): reused if present (after checking it matches
    the competition), otherwise written once, atomically."""
    path = Path(folds_dir) / folds_file_name(comp, n_folds, seed)
    if path.exists():
        _check_matches(read_folds(path), comp, n_folds, path)
        return path
    fold = make_folds(comp.Y, n_folds, seed, comp.groups)
    frame = pd.DataFrame({ID: comp.train_ids, FOLD: fold})
    labels = pd.DataFrame(np.asarray(comp.Y).astype(np.int64), columns=comp.classes)
    return write_csv(pd.concat([frame, labels], axis=1), path)

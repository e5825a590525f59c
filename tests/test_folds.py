"""kit.folds: properties of the stratified folds (as iterstrat's own tests) and the write-once folds file."""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pandas as pd
import pytest
from competitions import digits_competition

from kit.data import EMBEDDED_DATA, DataError, load_competition
from kit.folds import folds_file_name, get_or_create_folds, make_folds


@pytest.fixture(scope="module")
def bccd():
    return load_competition(EMBEDDED_DATA)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Multi-class, 10 classes of 174-179 rows: nearly every digit scikit-learn bundles (8 px images)."""
    root = digits_competition(tmp_path_factory.mktemp("digits") / "digits", n_train=1797, n_test=10, size=8)
    return load_competition(root)


def assert_partition(fold: np.ndarray, n_rows: int, n_folds: int) -> None:
    """Every row in exactly one fold, folds disjoint, none empty."""
    assert fold.shape == (n_rows,) and set(np.unique(fold)) == set(range(n_folds))
    held_out = [set(np.flatnonzero(fold == k)) for k in range(n_folds)]
    assert all(held_out) and sum(map(len, held_out)) == n_rows
    assert set().union(*held_out) == set(range(n_rows))


@pytest.mark.parametrize("data", ["bccd", "digits"])
@pytest.mark.parametrize("n_folds,seed", [(5, 0), (4, 7), (3, 123)])
def test_folds_are_a_stratified_partition(request, data, n_folds, seed):
    comp = request.getfixturevalue(data)
    fold = make_folds(comp.Y, n_folds, seed)
    assert_partition(fold, len(comp.Y), n_folds)
    overall = comp.Y.mean(axis=0)
    sizes = np.bincount(fold)
    assert sizes.max() - sizes.min() <= max(2, 0.05 * sizes.mean())  # near-equal fold sizes
    for k in range(n_folds):
        ratio = comp.Y[fold == k].mean(axis=0)
        tolerance = max(0.05, 1.5 / sizes[k])
        for c, name in enumerate(comp.classes):
            if comp.Y[:, c].sum() >= n_folds:
                assert abs(ratio[c] - overall[c]) <= tolerance, (data, k, name, ratio[c], overall[c])


@pytest.mark.parametrize("n_folds", [3, 5, 10])
def test_multiclass_counts_per_fold_are_exact(digits, n_folds):
    # one label per row: iterative stratification hits every class count per fold to within one row
    fold = make_folds(digits.Y, n_folds, 0)
    counts = np.stack([digits.Y[fold == k].sum(axis=0) for k in range(n_folds)])
    assert np.abs(counts - digits.Y.sum(axis=0) / n_folds).max() < 1


def test_rare_label_is_spread_over_folds(bccd):
    # BASOPHIL has 2 positives: stratification puts them in two different folds
    fold = make_folds(bccd.Y, 5, 0)
    basophil = bccd.Y[:, bccd.classes.index("BASOPHIL")] == 1
    assert len(set(fold[basophil])) == 2


def test_groups_are_never_split(bccd):
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 60, size=len(bccd.Y)).astype(str)
    fold = make_folds(bccd.Y, 5, 3, groups=groups)
    assert_partition(fold, len(bccd.Y), 5)
    fold_of_group = pd.Series(fold).groupby(groups).nunique()
    assert (fold_of_group == 1).all()
    # the group split is still stratified at the group level (any positive in the group)
    assert len(set(groups)) > 5 and np.bincount(pd.Series(fold).groupby(groups).first()).min() >= 10


def test_same_seed_same_folds_different_seed_different(bccd, digits):
    for comp in (bccd, digits):
        a, b, c = (make_folds(comp.Y, 5, s) for s in (11, 11, 12))
        np.testing.assert_array_equal(a, b)
        assert (a != c).mean() > 0.3  # a reshuffle, not a relabelling of a few rows
    groups = np.arange(len(bccd.Y)) // 3
    np.testing.assert_array_equal(make_folds(bccd.Y, 5, 1, groups), make_folds(bccd.Y, 5, 1, groups))


def test_single_column_labels_work():
    Y = np.array([[1], [0], [1], [0], [1], [0], [0], [0]], dtype=np.float32)
    fold = make_folds(Y, 2, 0)
    assert_partition(fold, 8, 2)
    assert sorted([Y[fold == 0, 0].sum(), Y[fold == 1, 0].sum()]) == [1, 2]  # 3 positives split 1 / 2


def test_too_few_rows_groups_or_folds():
    Y = np.eye(3, dtype=np.float32)
    with pytest.raises(DataError, match="3 rows cannot fill 5 folds"):
        make_folds(Y, 5, 0)
    with pytest.raises(DataError, match="2 groups cannot fill 3 folds"):
        make_folds(Y, 3, 0, groups=np.array(["a", "a", "b"]))
    with pytest.raises(DataError, match="at least 2"):
        make_folds(Y, 1, 0)


def test_folds_file_written_once_and_reused(bccd, tmp_path):
    path = get_or_create_folds(bccd, 5, 42, tmp_path)
    assert path.parent == tmp_path and path.name == folds_file_name(bccd, 5, 42)
    assert re.fullmatch(r"bccd-k5-s42-[0-9a-f]{8}\.csv", path.name)
    folds = pd.read_csv(path, dtype={"id": str})
    assert list(folds.columns) == ["id", "fold", *bccd.classes]
    assert list(folds["id"]) == list(bccd.train_ids)
    np.testing.assert_array_equal(folds[bccd.classes].to_numpy(), bccd.Y)
    np.testing.assert_array_equal(folds["fold"].to_numpy(), make_folds(bccd.Y, 5, 42))
    content, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    assert get_or_create_folds(bccd, 5, 42, tmp_path) == path
    assert path.read_bytes() == content and os.stat(path).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp files left behind


def test_file_name_depends_on_data_k_seed_and_groups(bccd):
    base = folds_file_name(bccd, 5, 0)
    assert folds_file_name(bccd, 5, 0) == base
    assert folds_file_name(bccd, 4, 0) != base and folds_file_name(bccd, 5, 1) != base
    relabelled = dataclasses.replace(bccd, Y=bccd.Y.copy())
    relabelled.Y[0, 0] = 1 - relabelled.Y[0, 0]
    assert folds_file_name(relabelled, 5, 0).rsplit("-", 1)[1] != base.rsplit("-", 1)[1]
    grouped = dataclasses.replace(bccd, groups=np.arange(len(bccd.Y)).astype(str), group_col="patient")
    assert re.fullmatch(r"bccd-k5-s0-gpatient-[0-9a-f]{8}\.csv", folds_file_name(grouped, 5, 0))


def test_grouped_folds_file_keeps_groups_whole(bccd, tmp_path):
    groups = (np.arange(len(bccd.Y)) // 4).astype(str)
    grouped = dataclasses.replace(bccd, groups=groups, group_col="patient")
    folds = pd.read_csv(get_or_create_folds(grouped, 5, 0, tmp_path))
    assert (folds.groupby(groups)["fold"].nunique() == 1).all()


def test_tampered_folds_file_is_rejected_not_rewritten(bccd, tmp_path):
    path = get_or_create_folds(bccd, 5, 0, tmp_path)
    folds = pd.read_csv(path, dtype={"id": str})
    folds.loc[3, bccd.classes[0]] = 1 - folds.loc[3, bccd.classes[0]]
    folds.to_csv(path, index=False)
    tampered = path.read_bytes()
    with pytest.raises(DataError, match=rf"{path.name}: labels differ .*\['{bccd.train_ids[3]}'\]"):
        get_or_create_folds(bccd, 5, 0, tmp_path)
    assert path.read_bytes() == tampered

"""Shared fixtures of the kit.cv tests: CLI arguments with tmp output dirs, small competitions built from
the real shared data, and one finished 2-fold run on the full real bccd data reused by several tests."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BCCD, PBC = SHARED / "bccd", SHARED / "pbc"
# the tiniest timm nets at 32px, 1 epoch: a fold trains in about a second on a CPU
TINY = ["--model", "test_resnet", "--folds", "2", "--epochs", "1", "--img-size", "32", "--quiet"]


def cv_argv(data: Path, out: Path, cache: Path, name: str, *extra: str) -> list[str]:
    """argv of `python -m kit.cv` for a tiny run of `data` writing under `out` (oof/ and folds/)."""
    return [*TINY, "--data", str(data), "--name", name, "--oof-dir", str(out / "oof"),
            "--folds-dir", str(out / "folds"), "--cache-dir", str(cache), *extra]


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` by relative path: equal before/after means untouched."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def subset_competition(source: Path, dest: Path, train_ids, test_ids) -> Path:
    """A competition folder with some rows of `source`: csv files cut to those ids, images symlinked."""
    dest.mkdir(parents=True)
    (dest / "images").mkdir()
    train = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    train[train["id"].isin(set(train_ids))].to_csv(dest / "train.csv", index=False)
    for name in ("test.csv", "sample_submission.csv"):
        frame = pd.read_csv(source / name, dtype=str, keep_default_na=False)
        frame[frame["id"].isin(set(test_ids))].to_csv(dest / name, index=False)
    for i in [*train_ids, *test_ids]:
        os.symlink(source / "images" / f"{i}.jpg", dest / "images" / f"{i}.jpg")
    return dest


def stratified_ids(csv: Path, label_col: str, n: int) -> list[str]:
    """About `n` ids of `csv`, the same share of every value of `label_col` (deterministic)."""
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    per_class = max(1, n // frame[label_col].nunique())
    return frame.groupby(label_col, sort=True).head(per_class)["id"].tolist()


@pytest.fixture(scope="session")
def one_thread():
    """Torch on one thread. On this shared 2-core machine, 2 OpenMP threads competing with other processes
    made a test_resnet step ~30x slower (3.3 s vs 0.1 s, measured side by side); one thread also keeps the
    numerics the same as in the subprocesses, which get OMP_NUM_THREADS=1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory, one_thread) -> Path:
    """One image cache for the whole session: each data set is decoded once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cv_args(tmp_path, cache_dir):
    """`cv_args(data, name, *extra)` -> argv of a tiny run writing under this test's tmp_path."""
    return lambda data, name, *extra: cv_argv(data, tmp_path, cache_dir, name, *extra)


@pytest.fixture(scope="session")
def small_bccd(tmp_path_factory) -> Path:
    """80 train rows (the first ones, every class but the 2-positive BASOPHIL present) and 12 test rows."""
    train = pd.read_csv(BCCD / "train.csv", dtype=str)["id"].tolist()[:80]
    test = pd.read_csv(BCCD / "test.csv", dtype=str)["id"].tolist()[:12]
    return subset_competition(BCCD, tmp_path_factory.mktemp("data") / "bccd80", train, test)


@pytest.fixture(scope="session")
def small_pbc(tmp_path_factory) -> Path:
    """Multi-class: ~300 train rows stratified over the 8 classes, 50 test rows."""
    train = stratified_ids(PBC / "train.csv", "label", 300)
    test = pd.read_csv(PBC / "test.csv", dtype=str)["id"].tolist()[::13][:50]
    return subset_competition(PBC, tmp_path_factory.mktemp("data") / "pbc300", train, test)


@dataclass
class FinishedRun:
    argv: list[str]       # the command line that made it (rerunning it must refuse)
    out: Path             # holds oof/ and folds/
    run_dir: Path

    def argv_with(self, *extra: str) -> list[str]:
        return [*self.argv, *extra]


@pytest.fixture(scope="session")
def bccd_run(tmp_path_factory, cache_dir) -> FinishedRun:
    """A finished 2-fold 1-epoch test_resnet run on the full real bccd data. Tests must not change it
    (the bad-input tests check exactly that, by hashing it)."""
    from kit.cv import main

    out = tmp_path_factory.mktemp("bccd_run")
    argv = cv_argv(BCCD, out, cache_dir, "full")
    assert main(argv) == 0
    return FinishedRun(argv, out, out / "oof" / "full")

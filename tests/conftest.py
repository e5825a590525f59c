"""Shared fixtures of the kit.cv tests: CLI arguments with tmp output dirs, small competitions built inside
the session (embedded bccd subsets, scikit-learn digits), and one finished 2-fold run on the full embedded
bccd data reused by several tests.

The suite needs nothing beside the repository. Tests marked `shared` are extras on this project's real
competitions in `../shared/data`: they are skipped where that folder is absent, and each repeats a check that
an in-repo test already makes on the embedded / digits data."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from competitions import bccd_subset, digits_competition

from kit.data import EMBEDDED_DATA

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # only for tests marked `shared`
BCCD = EMBEDDED_DATA  # the full embedded competition: 292 train / 72 test photos, 8 labels
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


def pytest_collection_modifyitems(config, items):
    """Extras on the real shared competitions are skipped, with the reason, where they are absent."""
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"extra on the real competitions: {SHARED_DATA} is absent")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


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
    """The first 80 train rows of the embedded bccd (every class but the 2-positive BASOPHIL present) and
    its first 12 test rows."""
    return bccd_subset(tmp_path_factory.mktemp("data") / "bccd80", n_train=80, n_test=12)


@pytest.fixture(scope="session")
def small_digits(tmp_path_factory) -> Path:
    """Multi-class: 300 train rows (30 of each of the 10 digits, class names "zero".."nine"), 60 test rows."""
    return digits_competition(tmp_path_factory.mktemp("data") / "digits300", n_train=300, n_test=60)


@dataclass
class FinishedRun:
    argv: list[str]       # the command line that made it (rerunning it must refuse)
    out: Path             # holds oof/ and folds/
    run_dir: Path

    def argv_with(self, *extra: str) -> list[str]:
        return [*self.argv, *extra]


@pytest.fixture(scope="session")
def bccd_run(tmp_path_factory, cache_dir) -> FinishedRun:
    """A finished 2-fold 1-epoch test_resnet run on the full embedded bccd data. Tests must not change it
    (the bad-input tests check exactly that, by hashing it)."""
    from kit.cv import main

    out = tmp_path_factory.mktemp("bccd_run")
    argv = cv_argv(BCCD, out, cache_dir, "full")
    assert main(argv) == 0
    return FinishedRun(argv, out, out / "oof" / "full")

"""Run folders on disk: atomic writes and validated reads of `oof/<run>/`.

The files are the interfaces between steps (cv -> tune -> blend -> score), so every read checks what it
relies on: the OOF covers every train row of the folds file exactly once, ids are unique, class columns
match the run's config.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ID, FOLD = "id", "fold"


def atomic_write(path: str | Path, write) -> Path:
    """Call `write(tmp_path)` then rename into place, so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.7g"))


def write_json(obj, path: str | Path) -> Path:
    text = json.dumps(obj, indent=2, default=str) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_coverage(ids: pd.Series, expected: pd.Series, where: str) -> None:
    """Raise unless `ids` holds every id of `expected` exactly once and nothing else."""
    dup = ids[ids.duplicated()].unique()
    missing = sorted(set(expected) - set(ids))
    extra = sorted(set(ids) - set(expected))
    problems = []
    if len(dup):
        problems.append(f"duplicate ids {list(dup[:10])}")
    if missing:
        problems.append(f"{len(missing)} missing ids, e.g. {missing[:10]}")
    if extra:
        problems.append(f"{len(extra)} unknown ids, e.g. {extra[:10]}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


@dataclass
class RunPredictions:
    """A finished run or blend as read back from disk."""
    name: str
    path: Path
    config: dict
    oof: pd.DataFrame           # id, fold, <classes> ; one row per train id, in folds-file order
    test: pd.DataFrame | None   # id, <classes>
    truth: pd.DataFrame         # the folds file rows in the same order: id, fold, <classes> as 0/1

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    def labels(self) -> np.ndarray:
        """(n, C) 0/1 train labels aligned with `oof_matrix()`."""
        return self.truth[self.classes].to_numpy(dtype=np.float64)

    def oof_matrix(self) -> np.ndarray:
        return self.oof[self.classes].to_numpy(dtype=np.float64)

    def test_matrix(self) -> np.ndarray | None:
        return None if self.test is None else self.test[self.classes].to_numpy(dtype=np.float64)


def is_complete(run_dir: str | Path) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / "config.json").exists() and (run_dir / "oof.csv").exists()


def load_run(run_dir: str | Path) -> RunPredictions:
    """Read `config.json`, `oof.csv` and `test.csv` (if any) of a run or blend folder, with checks."""
    run_dir = Path(run_dir)
    if not is_complete(run_dir):
        raise FileNotFoundError(f"{run_dir}: not a finished run (needs config.json and oof.csv)")
    config = read_json(run_dir / "config.json")
    classes = list(config["classes"])
    oof = pd.read_csv(run_dir / "oof.csv", dtype={ID: str})
    want = [ID, FOLD, *classes]
    if list(oof.columns) != want:
        raise ValueError(f"{run_dir / 'oof.csv'}: columns {list(oof.columns)} != expected {want}")
    truth = read_folds(config["folds_file"], config.get("folds_sha256"))
    check_coverage(oof[ID], truth[ID], f"{run_dir / 'oof.csv'} vs folds {config['folds_file']}")
    oof = oof.set_index(ID).loc[truth[ID]].reset_index()
    if not (oof[FOLD].to_numpy() == truth[FOLD].to_numpy()).all():
        raise ValueError(f"{run_dir / 'oof.csv'}: fold column disagrees with {config['folds_file']}")
    test = None
    if (run_dir / "test.csv").exists():
        test = pd.read_csv(run_dir / "test.csv", dtype={ID: str})
        if list(test.columns) != [ID, *classes]:
            raise ValueError(f"{run_dir / 'test.csv'}: columns {list(test.columns)} != {[ID, *classes]}")
    return RunPredictions(run_dir.name, run_dir, config, oof, test, truth)


def read_folds(folds_file: str | Path, sha256: str | None = None) -> pd.DataFrame:
    """The folds file (`id, fold, <classes as 0/1>`), checked against the hash a run recorded."""
    folds_file = Path(folds_file)
    if not folds_file.exists():
        raise FileNotFoundError(f"folds file {folds_file} is missing")
    if sha256 and file_sha256(folds_file) != sha256:
        raise ValueError(f"folds file {folds_file} changed since the run used it (sha256 mismatch)")
    return pd.read_csv(folds_file, dtype={ID: str})


def finished_runs(oof_dir: str | Path) -> list[Path]:
    """Every complete run/blend folder under `oof_dir`, sorted by name."""
    oof_dir = Path(oof_dir)
    return sorted(p for p in oof_dir.iterdir() if p.is_dir() and is_complete(p)) if oof_dir.exists() else []


def leaf_runs(oof_dir: str | Path, name: str, read, seen: dict | None = None) -> dict[str, dict]:
    """{run name: config} of every training run under `name` (itself, or a blend's members, recursively);
    `read(oof_dir, name)` returns a config.json, raising the caller's own error for a missing one."""
    seen = {} if seen is None else seen
    config = read(oof_dir, name)
    if config.get("kind", "run") == "run":
        seen[name] = config
    else:
        for member in config["runs"]:
            leaf_runs(oof_dir, member, read, seen)
    return seen

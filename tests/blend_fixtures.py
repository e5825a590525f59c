"""Synthetic run folders in the documented artifact format, for the blend / submission / score tests.

Written by hand (not by kit.blend's writer) so the tests check the file contract itself:
folds file `id, fold, <class 0/1>`; `oof/<run>/config.json` (kind, name, task, classes, data, folds_file,
folds_sha256), `oof.csv` (`id, fold, <classes>`), `test.csv` (`id, <classes>`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from kit.metrics import MULTICLASS
from kit.runs import file_sha256


def labels(rng, n: int, n_classes: int, task: str) -> np.ndarray:
    if task == MULTICLASS:
        return np.eye(n_classes)[rng.integers(0, n_classes, n)]
    Y = (rng.random((n, n_classes)) < 0.4).astype(float)
    Y[0], Y[1] = 1, 0  # every class has both values
    return Y


def noisy_probabilities(rng, Y: np.ndarray, task: str, noise: float) -> np.ndarray:
    """Probabilities that carry the labels plus independent noise (larger noise = worse run)."""
    z = 1.5 * (2 * Y - 1) + rng.normal(0, noise, Y.shape)
    if task == MULTICLASS:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1 / (1 + np.exp(-z))


def write_folds(path: Path, ids, folds, Y: np.ndarray, classes: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"id": ids, "fold": folds})
    for c, name in enumerate(classes):
        df[name] = Y[:, c].astype(int)
    df.to_csv(path, index=False)
    return path


def write_competition(root: Path, test_ids, classes: list[str], sample: str | None = "labels") -> Path:
    """A competition folder holding only what submissions need: sample_submission.csv (or none)."""
    root.mkdir(parents=True, exist_ok=True)
    if sample == "labels":
        pd.DataFrame({"id": test_ids, "label": classes[0]}).to_csv(root / "sample_submission.csv", index=False)
    elif sample == "onehot":  # class columns deliberately in reverse order
        df = pd.DataFrame({"id": test_ids})
        for c in reversed(classes):
            df[c] = 0
        df.to_csv(root / "sample_submission.csv", index=False)
    return root


def write_run(oof_dir: Path, name: str, *, task: str, classes: list[str], folds_file: Path, P_oof: np.ndarray,
              test_ids=None, P_test: np.ndarray | None = None, data_root: Path, kind: str = "run",
              id_col: str = "id") -> Path:
    folds = pd.read_csv(folds_file, dtype={"id": str})
    run = oof_dir / name
    run.mkdir(parents=True, exist_ok=True)
    config = {"kind": kind, "name": name, "task": task, "classes": classes,
              "data": {"root": str(data_root), "id_col": id_col, "name": data_root.name},
              "folds_file": str(folds_file), "folds_sha256": file_sha256(folds_file), "train": {}}
    (run / "config.json").write_text(json.dumps(config, indent=2))
    oof = pd.DataFrame(P_oof, columns=classes)
    oof.insert(0, "fold", folds["fold"])
    oof.insert(0, "id", folds["id"])
    oof.iloc[::-1].to_csv(run / "oof.csv", index=False, float_format="%.7g")  # any row order is allowed
    if P_test is not None:
        test = pd.DataFrame(P_test, columns=classes)
        test.insert(0, "id", list(test_ids))
        test.to_csv(run / "test.csv", index=False, float_format="%.7g")
    return run


def make_project(tmp_path: Path, task: str, n_runs: int = 3, n: int = 160, n_classes: int = 4, n_folds: int = 4,
                 n_test: int = 40, seed: int = 0, sample: str | None = "labels") -> dict:
    """oof/run0..run{R-1} (run r noisier than run r-1) on one folds file, plus a competition folder."""
    rng = np.random.default_rng(seed)
    classes = [f"class_{c}" for c in range(n_classes)]
    ids = [f"tr{i:04d}" for i in range(n)]
    test_ids = [f"te{i:04d}" for i in range(n_test)]
    Y, Y_test = labels(rng, n, n_classes, task), labels(rng, n_test, n_classes, task)
    folds_file = write_folds(tmp_path / "folds" / "synthetic-k4.csv", ids, np.arange(n) % n_folds, Y, classes)
    root = write_competition(tmp_path / "competition", test_ids, classes, sample)
    oof_dir = tmp_path / "oof"
    for r in range(n_runs):
        write_run(oof_dir, f"run{r}", task=task, classes=classes, folds_file=folds_file,
                  P_oof=noisy_probabilities(rng, Y, task, 1.2 + 0.3 * r), test_ids=test_ids,
                  P_test=noisy_probabilities(rng, Y_test, task, 1.2 + 0.3 * r), data_root=root)
    return {"oof_dir": oof_dir, "tune_dir": tmp_path / "tune", "submissions_dir": tmp_path / "submissions",
            "folds_file": folds_file, "root": root, "classes": classes, "ids": ids, "test_ids": test_ids,
            "Y": Y, "Y_test": Y_test, "task": task, "rng": rng}


def cli_dirs(project: dict) -> list[str]:
    return ["--oof-dir", str(project["oof_dir"]), "--tune-dir", str(project["tune_dir"]),
            "--submissions-dir", str(project["submissions_dir"])]


def write_thresholds(tune_dir: Path, name: str, task: str, classes: list[str], values) -> Path:
    path = tune_dir / name / "thresholds.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "bias" if task == MULTICLASS else "threshold"
    path.write_text(json.dumps({"run": name, "task": task, "metric": "macro_f1", "kind": kind,
                                "classes": classes, "values": list(values)}))
    return path

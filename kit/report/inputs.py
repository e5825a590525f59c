"""Everything a run or blend report shows, read and checked before anything is drawn: the run's files,
its thresholds, the test labels of `--solution`, its sibling seeds, a blend's members, the image paths."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.metrics import MULTICLASS
from kit.runs import ID, RunPredictions, finished_runs, load_run, read_json
from kit.score import read_table
from kit.submission import read_thresholds, thresholds_path


class ReportError(ValueError):
    """Input a report cannot be made from; the message names the file."""


@dataclass
class ReportInputs:
    run: RunPredictions
    scores: dict
    summary: pd.DataFrame | None = None        # runs only: per-epoch curves
    thresholds: dict | None = None             # tune/<run>/thresholds.json as written
    values: np.ndarray | None = None           # its per-class values in run.classes order
    test_truth: np.ndarray | None = None       # (n_test, C) 0/1 from --solution, in test.csv order
    solution: Path | None = None
    seeds: list[tuple[str, int, dict]] = field(default_factory=list)
    members: list[RunPredictions] = field(default_factory=list)
    weights: dict | None = None
    image_paths: dict[str, Path] = field(default_factory=dict)  # train and test id -> image file
    image_error: str | None = None


def solution_labels(path: str | Path, ids, classes: list[str], task: str) -> np.ndarray:
    """(len(ids), C) 0/1 labels of a solution file (one label column of space-separated class names, or a
    0/1 column per class), in the order of `ids`; ids or classes it lacks are an error naming the file."""
    table = read_table(path)
    missing = [i for i in ids if i not in table.index]
    if missing:
        raise ReportError(f"{path}: no row for {len(missing)} test ids, e.g. {missing[:10]}")
    table = table.loc[list(ids)]
    if table.shape[1] == 1:
        sets = [s.split() for s in table.iloc[:, 0]]
        unknown = sorted({c for s in sets for c in s} - set(classes))
        if unknown:
            raise ReportError(f"{path}: labels {unknown} are not classes of the run ({classes})")
        Y = np.array([[c in s for c in classes] for s in sets], dtype=np.float64)
    else:
        absent = [c for c in classes if c not in table.columns]
        if absent:
            raise ReportError(f"{path}: no column for classes {absent}")
        Y = table[classes].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        if not np.isin(Y, (0, 1)).all():
            raise ReportError(f"{path}: class columns must hold 0/1")
    if task == MULTICLASS and not (Y.sum(1) == 1).all():
        bad = [i for i, n in zip(ids, Y.sum(1)) if n != 1]
        raise ReportError(f"{path}: a multi-class solution needs exactly one class per row; ids {bad[:10]}")
    return Y


def training_config(config: dict, oof_dir: Path) -> dict:
    """The training config behind a run, or behind a blend's first member (recursively)."""
    while config.get("kind") == "blend":
        config = read_json(oof_dir / config["runs"][0] / "config.json")
    return config["train"]


def image_paths(config: dict, oof_dir: Path) -> dict[str, Path]:
    """Train and test id -> image file, from the competition folder the run was trained on."""
    from kit.config import config_from_dict
    from kit.crossval import load_data

    comp = load_data(config_from_dict(training_config(config, oof_dir)))
    paths = dict(zip(map(str, comp.train_ids), comp.train_paths))
    if comp.test_paths:
        paths.update(zip(map(str, comp.test_ids), comp.test_paths))
    return paths


def seed_runs(run: RunPredictions) -> list[tuple[str, int, dict]]:
    """(name, seed, overall scores) of every finished run beside `run` whose training config equals its
    own but for the seed, name and runtime-only keys; this run included. Empty for blends."""
    if run.config.get("kind") != "run":
        return []
    from kit.crossval import RUNTIME_KEYS  # torch comes with it: imported only when needed

    may_differ = {"seed", "name"} | RUNTIME_KEYS

    def same_config(train):
        keys = (set(train) | set(run.config["train"])) - may_differ
        return all(train.get(k) == run.config["train"].get(k) for k in keys)
    found = []
    for path in finished_runs(run.path.parent):
        config = read_json(path / "config.json")
        same_folds = config.get("folds_sha256") == run.config.get("folds_sha256")
        if config.get("kind") == "run" and same_folds and same_config(config.get("train", {})) \
                and (path / "scores.json").exists():
            found.append((path.name, config["train"]["seed"], read_json(path / "scores.json")["overall"]))
    return found


def load_inputs(run_dir: str | Path, tune_dir: str | Path, solution: str | Path | None = None) -> ReportInputs:
    """Read and check everything the report of `run_dir` needs; bad input raises ReportError."""
    run_dir = Path(run_dir)
    try:
        run = load_run(run_dir)
        scores = read_json(run_dir / "scores.json")
        inputs = ReportInputs(run, scores)
        if (run_dir / "summary.csv").exists():
            inputs.summary = pd.read_csv(run_dir / "summary.csv")
        path = thresholds_path(tune_dir, run.name)
        if path.exists():
            inputs.thresholds = read_json(path)
            inputs.values = read_thresholds(path, run.task, run.classes)
        if solution is not None:
            if run.test is None:
                raise ReportError(f"{run_dir}: has no test.csv to score against {solution}")
            inputs.solution = Path(solution)
            try:
                inputs.test_truth = solution_labels(solution, list(run.test[ID]), run.classes, run.task)
            except ReportError as err:
                raise ReportError(f"test rows of {run_dir}: {err}") from err
        inputs.seeds = seed_runs(run)
        if run.config.get("kind") == "blend":
            inputs.members = [load_run(run_dir.parent / name) for name in run.config["runs"]]
            inputs.weights = read_json(run_dir / "weights.json")
    except (KeyError, FileNotFoundError) as err:
        raise ReportError(f"{run_dir}: {err}") from err
    try:
        inputs.image_paths = image_paths(run.config, run_dir.parent)
    except (ValueError, KeyError, FileNotFoundError) as err:  # a view without pictures is still worth having
        inputs.image_error = f"images not available ({err})"
        print(f"warning: {run.name}: {inputs.image_error}", file=sys.stderr)
    return inputs

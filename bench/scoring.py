"""What the score benchmarks share: a finished run's OOF and local test scores (the test labels come from the
competition's solution.csv, which nothing in the kit trains, tunes or selects on)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.metrics import all_scores
from kit.runs import ID, load_run


def test_labels(solution: Path, ids, classes: list[str]) -> np.ndarray:
    """One-hot test labels of a multi-class solution.csv, in the order of `ids`."""
    sol = pd.read_csv(solution, dtype=str).set_index(ID).loc[ids]
    return np.eye(len(classes))[[classes.index(c) for c in sol.iloc[:, 0]]]


def scores_of(run_dir: Path, solution: Path) -> dict:
    """`oof_<metric>` and `test_<metric>` of a finished run or blend."""
    run = load_run(run_dir)
    oof = all_scores(run.labels(), run.oof_matrix(), run.task)
    test = all_scores(test_labels(solution, run.test[ID], run.classes), run.test_matrix(), run.task)
    return {**{f"oof_{k}": v for k, v in oof.items()}, **{f"test_{k}": v for k, v in test.items()}}

"""The whole flow through the CLIs a user types, on both tasks (the embedded bccd, multi-label; digits,
multi-class): two tiny backbones -> kit.tune thresholds -> kit.blend -> submission in the sample's format ->
kit.score against solution.csv."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import BCCD, cv_argv

from kit import blend, cv, score, tune
from kit.runs import load_run


@pytest.mark.parametrize("source", ["bccd", "digits"])
def test_two_models_to_a_scored_submission(tmp_path, cache_dir, small_digits, source):
    data = BCCD if source == "bccd" else small_digits
    for model in ("test_resnet", "test_efficientnet"):
        assert cv.main(cv_argv(data, tmp_path, cache_dir, model, "--model", model)) == 0
    dirs = ["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune")]
    tuned = tune.main(dirs)  # no run named: every finished run
    assert {t["run"] for t in tuned} == {"test_resnet", "test_efficientnet"}
    blend.main(["--runs", "test_resnet", "test_efficientnet", "--method", "hill", "--name", "b", *dirs,
                "--submissions-dir", str(tmp_path / "subs")])

    sample = pd.read_csv(data / "sample_submission.csv", dtype=str, keep_default_na=False)
    sub = pd.read_csv(tmp_path / "subs" / "b.csv", dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(sample.columns) and sub["id"].tolist() == sample["id"].tolist()
    b = load_run(tmp_path / "oof" / "b")
    vocabulary = set(b.classes)
    if source == "bccd":   # space-separated label names, possibly empty
        assert all(set(v.split()) <= vocabulary for v in sub["labels"])
    else:                  # exactly one class name per row
        assert set(sub["label"]) <= vocabulary

    solution = pd.read_csv(data / "solution.csv", dtype=str, keep_default_na=False)
    assert set(solution["id"]) == set(sample["id"])
    scores = score.main([str(tmp_path / "subs" / "b.csv"), "--solution", str(data / "solution.csv")])
    assert 0.0 <= scores["macro_f1"] <= 1.0
    board = pd.read_csv(tmp_path / "subs" / "leaderboard.csv")
    assert set(board["name"]) == {"test_resnet", "test_efficientnet", "b"}

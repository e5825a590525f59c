"""kit.cv --model A B --devices ...: every fold a process on a device slot; the result equals runs trained one
by one; a failed fold is reported while the rest go on; the same command again trains only what is missing."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit import cv

MODELS = ["test_resnet", "test_efficientnet"]


def read_oof(run_dir):
    return pd.read_csv(run_dir / "oof.csv", dtype={"id": str}).set_index("id").sort_index()


def test_scheduled_runs_equal_runs_trained_one_by_one(tmp_path, cv_args, small_digits, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs' numerics match this process's one thread
    scheduled = [a for a in cv_args(small_digits, "x") if a not in ("--name", "x")]
    model_at = scheduled.index("--model")
    scheduled[model_at + 1:model_at + 2] = MODELS
    scheduled = [a.replace(str(tmp_path / "oof"), str(tmp_path / "sched")) for a in scheduled]
    assert cv.main([*scheduled, "--devices", "cpu"]) == 0
    progress = capsys.readouterr().out
    assert "[cpu] test_resnet fold 1: done" in progress and "[cpu] test_efficientnet fold 0: started" in progress
    for model in MODELS:
        assert cv.main(cv_args(small_digits, model, "--model", model)) == 0
        one_by_one, together = read_oof(tmp_path / "oof" / model), read_oof(tmp_path / "sched" / model)
        np.testing.assert_allclose(together.to_numpy(), one_by_one.to_numpy(), atol=1e-6)
        assert (tmp_path / "sched" / model / "fold0.log").exists()  # each job's output kept apart


def test_failed_fold_is_reported_the_rest_go_on_and_a_rerun_finishes(tmp_path, cv_args, small_digits,
                                                                      monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = [a for a in cv_args(small_digits, "x") if a not in ("--name", "x")]
    argv[argv.index("--model") + 1:argv.index("--model") + 2] = MODELS
    broken = tmp_path / "oof" / "test_efficientnet" / "fold1" / "last.pt"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")  # its job resumes from this and crashes
    assert cv.main([*argv, "--devices", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "test_efficientnet fold 1: FAILED" in out and "log: " in out
    assert (tmp_path / "oof" / "test_resnet" / "oof.csv").exists()          # the other run finished
    assert (tmp_path / "oof" / "test_efficientnet" / "fold0" / "oof.csv").exists()
    assert "folds [1] still to run" in out

    broken.unlink()
    assert cv.main([*argv, "--devices", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "test_resnet: finished, skipped" in out and "1 fold job(s)" in out
    assert len(read_oof(tmp_path / "oof" / "test_efficientnet")) == 300  # assembled, every row once


def test_bad_devices_and_names_are_refused_before_any_work(tmp_path, cv_args, small_digits, capsys):
    argv = cv_args(small_digits, "x")
    assert cv.main([*argv, "--devices", "0,gpu1"]) == 2
    assert "--devices '0,gpu1'" in capsys.readouterr().err
    argv[argv.index("--model") + 1:argv.index("--model") + 2] = MODELS
    assert cv.main([*argv, "--devices", "cpu"]) == 2  # two models cannot share the name "x"
    assert "would share a name" in capsys.readouterr().err
    assert not (tmp_path / "oof").exists()

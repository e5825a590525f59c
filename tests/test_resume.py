"""kit.cv after a real crash: a subprocess SIGKILLed mid-fold, refused without --resume (nothing deleted),
then resumed to exactly the predictions and history of an uninterrupted run."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from conftest import BCCD, ROOT, tree_hashes

from kit.cv import main

HISTORY = ["fold", "epoch", "train_loss", "valid_loss", "valid_metric", "lr"]  # all but seconds


def kill_after_first_checkpoint(argv: list[str], last_pt, log_path, timeout: float = 300) -> None:
    """Start `python -m kit.cv argv`, wait until `last_pt` exists (an epoch is checkpointed), SIGKILL it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kit.cv", *argv], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not last_pt.exists():
            assert proc.poll() is None, f"kit.cv ended (rc {proc.returncode}) before {last_pt}:\n" \
                                        f"{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no {last_pt} after {timeout}s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:  # a failed wait above: never leave the process running
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def read_run(run_dir):
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"id": str}).set_index("id").sort_index()
    test = pd.read_csv(run_dir / "test.csv", dtype={"id": str}).set_index("id")
    history = pd.read_csv(run_dir / "summary.csv")[HISTORY].sort_values(["fold", "epoch"], ignore_index=True)
    return oof, test, history


def test_killed_run_resumes_to_the_uninterrupted_result(cv_args, tmp_path, capsys):
    argv = cv_args(BCCD, "killed", "--epochs", "3")
    run_dir = tmp_path / "oof" / "killed"
    kill_after_first_checkpoint(argv, run_dir / "fold0" / "last.pt", tmp_path / "killed.log")
    # killed mid-fold: fold 0 has its resume state but no predictions, and there is no run output
    assert (run_dir / "fold0" / "last.pt").exists() and not (run_dir / "fold0" / "oof.csv").exists()
    assert not (run_dir / "oof.csv").exists() and not (run_dir / "fold1").exists()

    before = tree_hashes(tmp_path / "oof")
    capsys.readouterr()
    assert main(argv) != 0  # no --resume: refused, and nothing deleted or rewritten
    err = capsys.readouterr().err
    assert re.search(r"folds \[0\] were interrupted; pass --resume", err), err
    assert tree_hashes(tmp_path / "oof") == before

    assert main([*argv, "--resume"]) == 0
    assert main(cv_args(BCCD, "straight", "--epochs", "3")) == 0
    (oof, test, history), (oof_ref, test_ref, history_ref) = read_run(run_dir), read_run(tmp_path / "oof" / "straight")
    assert oof.index.equals(oof_ref.index) and (oof["fold"] == oof_ref["fold"]).all()
    assert np.allclose(oof.to_numpy(float), oof_ref.to_numpy(float), rtol=0, atol=1e-6)
    assert test.index.equals(test_ref.index)
    assert np.allclose(test.to_numpy(float), test_ref.to_numpy(float), rtol=0, atol=1e-6)
    # the epochs trained before the kill are part of the history, and every epoch is as uninterrupted
    assert len(history) == 2 * 3
    np.testing.assert_allclose(history.to_numpy(float), history_ref.to_numpy(float), rtol=0, atol=1e-6)
    assert not list(run_dir.glob("fold*/last.pt"))

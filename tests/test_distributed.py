"""Data-parallel folds under torchrun (gloo on this CPU): two processes write one run whose OOF covers every
row once, with scores close to the single-process run; the sampler's shares partition each epoch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from kit import cv
from kit.loader import EpochSampler


def test_epoch_sampler_shares_partition_the_global_order():
    whole = list(EpochSampler(11, seed=3, fold=1, shuffle=True))
    shares = [list(EpochSampler(11, seed=3, fold=1, shuffle=True, rank=r, world=3)) for r in range(3)]
    assert [len(s) for s in shares] == [4, 4, 4]  # equal shares: every rank takes the same number of steps
    merged = [shares[r][i] for i in range(4) for r in range(3)]
    assert merged[:11] == whole and merged[11:] == whole[:1]  # the global order, padded by its own start


def test_two_process_run_matches_the_single_process_run(tmp_path, cv_args, small_digits):
    single = cv_args(small_digits, "single", "--epochs", "2")
    assert cv.main(single) == 0
    ddp = [a.replace("single", "ddp") for a in single]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "kit.cv", *ddp], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    oof = pd.read_csv(tmp_path / "oof" / "ddp" / "oof.csv", dtype={"id": str})
    reference = pd.read_csv(tmp_path / "oof" / "single" / "oof.csv", dtype={"id": str})
    assert oof.shape == reference.shape and not oof["id"].duplicated().any()  # written once, every row once
    assert sorted(oof["id"]) == sorted(reference["id"])
    scores = [json.loads((tmp_path / "oof" / name / "scores.json").read_text())["overall"] for name in ("ddp", "single")]
    assert abs(scores[0]["log_loss"] - scores[1]["log_loss"]) < 0.05
    assert abs(scores[0]["accuracy"] - scores[1]["accuracy"]) < 0.1
    summary = pd.read_csv(tmp_path / "oof" / "ddp" / "summary.csv")
    assert len(summary) == 4 and np.isfinite(summary["valid_loss"]).all()  # one row per fold and epoch: rank 0's

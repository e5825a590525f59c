"""Training options end to end on tiny runs: every balance method on both tasks, EMA, Lion, label
smoothing, mixup, head-only freezing; plus the loss and freezing helpers checked directly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kit import cv
from kit.model import create_model, set_backbone_trainable
from kit.losses import loss_fn


@pytest.mark.parametrize("source,extra", [
    ("bccd", ["--balance", "selective", "--ema-decay", "0.9", "--opt", "lion", "--lr", "1e-4"]),
    ("bccd", ["--balance", "class-weight", "--label-smoothing", "0.1", "--mixup", "0.4", "--freeze-epochs", "1"]),
    ("digits", ["--balance", "selective", "--balance-target", "0.5", "--mixup", "0.4"]),
    ("digits", ["--balance", "sampler", "--ema-decay", "0.9", "--label-smoothing", "0.1"]),
    ("digits", ["--balance", "class-weight", "--freeze-epochs", "1", "--no-tta"]),
])
def test_option_runs_end_to_end(tmp_path, cv_args, small_bccd, small_digits, source, extra):
    data = small_bccd if source == "bccd" else small_digits
    assert cv.main(cv_args(data, "opt", "--epochs", "2", *extra)) == 0
    oof = pd.read_csv(tmp_path / "oof" / "opt" / "oof.csv")
    P = oof.drop(columns=["id", "fold"]).to_numpy()
    assert np.isfinite(P).all() and ((P >= 0) & (P <= 1)).all()
    if source == "digits":
        assert np.allclose(P.sum(axis=1), 1, atol=1e-5)
    summary = pd.read_csv(tmp_path / "oof" / "opt" / "summary.csv")
    assert len(summary) == 4 and np.isfinite(summary["train_loss"]).all()


def test_freezing_leaves_only_the_head_trainable():
    model = create_model("test_resnet", 3, log=lambda *a: None)
    set_backbone_trainable(model, False)
    head = {id(p) for p in model.get_classifier().parameters()}
    assert all(p.requires_grad == (id(p) in head) for p in model.parameters())
    assert any(not p.requires_grad for p in model.parameters())
    set_backbone_trainable(model, True)
    assert all(p.requires_grad for p in model.parameters())


def test_loss_smoothing_and_weights():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    Y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    plain = loss_fn(logits, Y, "multilabel", 0.0)
    assert plain == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(logits, Y).item())
    smoothed = loss_fn(logits, Y, "multilabel", 0.2)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, Y * 0.8 + 0.1)
    assert smoothed == pytest.approx(expected.item())
    W = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # only the first element counts, twice
    weighted = loss_fn(logits, Y, "multilabel", 0.0, weights=W)
    first = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 0], Y[0, 0])
    assert weighted == pytest.approx((2 * first / 4).item())
    ce = loss_fn(logits, Y, "multiclass", 0.0, weights=torch.tensor([1.0, 0.0]))
    assert ce == pytest.approx(torch.nn.functional.cross_entropy(logits[:1], Y[:1]).item() / 2)

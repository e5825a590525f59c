"""Training options of issue 10: losses (focal, ASL), gradient accumulation and clipping, layer-wise lr decay,
a batch split on CUDA out-of-memory, `--select last`, the measured memory format, and the stacker that sees
every class's predictions."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from timm.loss import AsymmetricLossMultiLabel
from timm.optim import create_optimizer_v2
from torchvision.ops import sigmoid_focal_loss

from kit import autotune, cv
from kit.balance import BatchBalancer
from kit.blend.stacking import StackBlender
from kit.losses import loss_fn
from kit.runtime import resolve_runtime
from kit.steps import train_one_epoch

RUNTIME = resolve_runtime("cpu", False, False, 0)


def test_focal_and_asl_losses_are_the_libraries_and_weightable():
    torch.manual_seed(0)
    logits, Y = torch.randn(6, 3), (torch.rand(6, 3) > 0.5).float()
    focal = loss_fn(logits, Y, "multilabel", 0.0, loss="focal")
    assert focal.item() == pytest.approx(sigmoid_focal_loss(logits, Y, reduction="mean").item())
    asl = loss_fn(logits, Y, "multilabel", 0.0, loss="asl")
    assert asl.item() == pytest.approx(AsymmetricLossMultiLabel(reduction="mean")(logits, Y).item())
    W = torch.zeros(6, 3)
    W[0, 0] = 18.0  # one element, weighted as selective learning would
    one = sigmoid_focal_loss(logits[0, 0], Y[0, 0], reduction="none")
    assert loss_fn(logits, Y, "multilabel", 0.0, weights=W, loss="focal").item() == pytest.approx(one.item())
    onehot = torch.eye(3)[[0, 2, 1, 1, 0, 2]]
    p_t = torch.softmax(logits, -1)[torch.arange(6), onehot.argmax(1)]
    expected = (torch.nn.functional.cross_entropy(logits, onehot, reduction="none") * (1 - p_t) ** 2).mean()
    assert loss_fn(logits, onehot, "multiclass", 0.0, loss="focal").item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="asl.*does not fit a multiclass task"):
        loss_fn(logits, onehot, "multiclass", 0.0, loss="asl")


def test_asl_on_a_multiclass_competition_is_refused_before_any_work(tmp_path, cv_args, small_digits, capsys):
    assert cv.main(cv_args(small_digits, "asl", "--loss", "asl")) == 2
    assert "does not fit a multiclass task" in capsys.readouterr().err
    assert not (tmp_path / "oof" / "asl").exists() and not (tmp_path / "folds").exists()


class NoBatchNorm(torch.nn.Module):
    """A model whose gradient of a batch is exactly the mean of its rows' (no BatchNorm)."""
    pretrained_cfg = {}

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def batches(n_batches, size, seed=0):
    rng = np.random.default_rng(seed)
    return [(torch.from_numpy(rng.integers(0, 256, (size, 8, 8, 3), dtype=np.uint8)),
             torch.from_numpy((rng.random((size, 2)) > 0.5).astype(np.float32))) for _ in range(n_batches)]


def one_epoch(model, loader, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = type("NoSchedule", (), {"step_update": lambda self, num_updates: None})()
    state = {"step": 0}
    Y = torch.cat([y for _, y in loader]).numpy()
    train_one_epoch(model, loader, optimizer, scheduler, RUNTIME.grad_scaler(), None, RUNTIME, "multilabel",
                    BatchBalancer("none", "multilabel", Y), torch.Generator().manual_seed(0), state, **kwargs)
    return state, torch.cat([p.detach().flatten() for p in model.parameters()])


def test_accumulating_two_half_batches_is_one_full_batch_step():
    whole = batches(1, 8)
    halves = [(whole[0][0][:4], whole[0][1][:4]), (whole[0][0][4:], whole[0][1][4:])]
    state_full, full = one_epoch(NoBatchNorm(), whole)
    state_acc, acc = one_epoch(NoBatchNorm(), halves, accum_steps=2)
    _, unaccumulated = one_epoch(NoBatchNorm(), halves)
    assert (state_full["step"], state_acc["step"]) == (1, 1)
    torch.testing.assert_close(acc, full)
    assert not torch.allclose(unaccumulated, full)  # two steps are not one


def test_clipping_bounds_the_update():
    start = torch.cat([p.detach().flatten() for p in NoBatchNorm().parameters()])
    _, clipped = one_epoch(NoBatchNorm(), batches(1, 8), clip_grad=1e-3)
    _, free = one_epoch(NoBatchNorm(), batches(1, 8))
    assert (clipped - start).norm() <= 1e-3 + 1e-6 < (free - start).norm()


def test_cuda_out_of_memory_splits_the_batch_and_keeps_the_step(monkeypatch):
    model, messages = NoBatchNorm(), []
    forward = model.forward

    def small_batches_only(x):
        if len(x) > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(x)
    monkeypatch.setattr(model, "forward", small_batches_only)
    state, split = one_epoch(model, batches(2, 8), log=messages.append)
    _, whole = one_epoch(NoBatchNorm(), batches(2, 8))
    assert state["micro"] == 2 and state["step"] == 2 and "2 pieces" in messages[0]
    torch.testing.assert_close(split, whole)  # same effective batch, same update


def test_layer_decay_gives_the_stem_a_smaller_learning_rate():
    from kit.model import create_model

    model = create_model("resnet10t", 3, log=lambda *a: None)
    groups = create_optimizer_v2(model, opt="adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.5).param_groups
    scales = sorted({g["lr_scale"] for g in groups})
    assert len(scales) > 2 and scales[0] < 0.1 and scales[-1] == 1.0


def test_select_last_trains_every_epoch_and_keeps_the_final_weights(tmp_path, cv_args, small_digits):
    argv = cv_args(small_digits, "last", "--epochs", "3", "--patience", "1", "--select", "last", "--lr", "1e-6")
    assert cv.main(argv) == 0
    summary = pd.read_csv(tmp_path / "oof" / "last" / "summary.csv")
    assert sorted(summary.groupby("fold")["epoch"].max()) == [3, 3]  # no early stop on a flat metric
    best = torch.load(tmp_path / "oof" / "last" / "fold0" / "best.pt", weights_only=False)
    assert best["epoch"] == 3 and isinstance(best["runtime"]["channels_last"], bool)  # measured, recorded


def test_memory_format_is_measured_once_and_cached(tmp_path, monkeypatch):
    timed = []
    monkeypatch.setattr(autotune, "time_steps", lambda model, x, fmt: timed.append(fmt) or (0.1 if fmt else 0.2))
    make = lambda: torch.nn.Conv2d(3, 2, 3)  # noqa: E731
    args = (make, torch.device("cpu"), 16, 24, 3, "conv", tmp_path)
    assert autotune.choose_channels_last(*args, log=lambda *a: None) is True and sorted(timed) == [False, True]
    assert autotune.choose_channels_last(*args, log=lambda *a: None) is True and len(timed) == 2  # cached
    cached = json.loads((tmp_path / "memory-format.json").read_text())
    assert list(cached.values())[0]["seconds"] == {"contiguous": 0.2, "channels_last": 0.1}
    monkeypatch.setattr(autotune, "time_steps", lambda model, x, fmt: 0.1 if not fmt else 0.3)
    assert autotune.choose_channels_last(make, torch.device("cpu"), 16, 48, 3, "conv", tmp_path) is False


def test_stacker_on_all_classes_learns_from_a_correlated_label():
    rng = np.random.default_rng(0)
    n = 400
    y0 = (rng.random(n) < 0.4).astype(float)
    Y = np.stack([y0, y0, (rng.random(n) < 0.5).astype(float)], axis=1)  # class 1 always equals class 0
    folds = np.arange(n) % 4
    P = []
    for r in range(2):  # both runs see class 0 well, class 1 not at all
        informative = 1 / (1 + np.exp(-(3 * (2 * y0 - 1) + rng.normal(0, 1, n))))
        P.append(np.stack([informative, rng.random(n), rng.random(n)], axis=1))
    per_class = StackBlender(task="multilabel").fit(P, Y, folds)
    every = StackBlender(task="multilabel", features="all").fit(P, Y, folds)
    assert every.coef_.shape == (3, 2 * 3)
    assert roc_auc_score(Y[:, 1], every.oof_[:, 1]) > 0.9 > 0.7 > roc_auc_score(Y[:, 1], per_class.oof_[:, 1])

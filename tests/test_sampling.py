"""kit.sampling: the rare-label-aware batch sampler (`--batch-sampler rare`) on hand-made and real labels
(embedded bccd), alone and under selective weighting, its data-parallel split, and tiny kit.cv runs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kit import cv
from kit.balance import BalanceError, selective_weights, target_rates
from kit.config import TrainConfig, validate_config
from kit.crossval import run_cv
from kit.data import EMBEDDED_DATA, load_competition
from kit.loader import EpochSampler
from kit.metrics import MULTICLASS, MULTILABEL
from kit.sampling import (RareBatchSampler, check_rare_batches, compose_rare_batches, rare_labels,
                          train_sampler)


def epoch_rows(sampler, epoch: int = 0) -> np.ndarray:
    sampler.set_epoch(epoch)
    return np.array([row for row, _ in sampler])


def batches(sampler, block: int, epoch: int = 0) -> np.ndarray:
    return epoch_rows(sampler, epoch).reshape(-1, block)


def bccd_labels() -> np.ndarray:
    return load_competition(EMBEDDED_DATA).Y  # 292 rows, BASOPHIL 2, MONOCYTE 19, LYMPHOCYTE 33 positives


def multilabel_with_an_empty_label(n=300, seed=0) -> np.ndarray:
    """Label 0: 3 positives, label 1: 9, label 2: none, label 3: ~half the rows."""
    rng = np.random.default_rng(seed)
    Y = np.zeros((n, 4))
    Y[rng.choice(n, 3, replace=False), 0] = 1
    Y[rng.choice(n, 9, replace=False), 1] = 1
    Y[:, 3] = rng.random(n) < 0.5
    return Y


def test_rare_labels_are_those_under_per_batch_on_average_rarest_first():
    Y = multilabel_with_an_empty_label()
    # per batch of 32 on average: label 0 0.32, label 1 0.96, label 2 0 (no positive), label 3 ~16
    assert rare_labels(Y, 32, 1).tolist() == [0, 1]
    assert rare_labels(Y, 32, 2).tolist() == [0, 1]
    assert rare_labels(Y, 8, 1).tolist() == [0, 1]
    assert rare_labels(Y, 32, 20).tolist() == [0, 1, 3]
    assert rare_labels(Y[:, [1, 0]], 32, 1).tolist() == [1, 0]  # rarest first, whatever the column order


@pytest.mark.parametrize("per_batch", [1, 2, 4])
def test_every_batch_holds_the_rare_positives_on_real_multilabel_labels(per_batch):
    Y = bccd_labels()
    sampler = RareBatchSampler(Y, 32, per_batch, seed=3, fold=1)
    assert len(sampler.labels) > 0 and 0 in sampler.labels  # BASOPHIL (2 positives) is always rare
    for epoch in range(3):
        counts = Y[batches(sampler, 32, epoch)].sum(axis=1)  # (batches, labels)
        for c, k in zip(sampler.labels, sampler.need):
            assert k == min(per_batch, Y[:, c].sum())
            assert (counts[:, c] >= k).all(), (per_batch, c, counts[:, c])
    # the plain shuffle leaves BASOPHIL out of most batches: the sampler is what puts it in
    plain = EpochSampler(len(Y), seed=3, fold=1, shuffle=True)
    assert (Y[epoch_rows(plain)[:len(Y) // 32 * 32].reshape(-1, 32), 0].sum(axis=1) == 0).sum() >= 5


def test_every_batch_holds_the_rare_class_multiclass():
    y = np.r_[np.zeros(5), np.ones(95), np.full(100, 2)].astype(int)  # class 0: 5 rows of 200
    Y = np.eye(3)[y]
    sampler = RareBatchSampler(Y, 16, 2, seed=0, fold=0)
    assert sampler.labels.tolist() == [0] and sampler.need.tolist() == [2]
    for epoch in range(4):
        B = y[batches(sampler, 16, epoch)]
        assert ((B == 0).sum(axis=1) >= 2).all()
        assert ((B == 1).sum(axis=1) > 0).all() and ((B == 2).sum(axis=1) > 0).all()


def test_a_label_with_no_positive_or_fewer_positives_than_asked():
    Y = multilabel_with_an_empty_label()
    sampler = RareBatchSampler(Y, 32, 5, seed=1, fold=0)
    assert 2 not in sampler.labels  # no positive: nothing to put in, no error
    need = dict(zip(sampler.labels.tolist(), sampler.need.tolist()))
    assert need == {0: 3, 1: 5}  # label 0 has only 3 positives: every batch gets all 3
    B = batches(sampler, 32)
    assert (Y[B, 0].sum(axis=1) == 3).all() and (Y[B, 1].sum(axis=1) >= 5).all()
    assert all(len(set(b)) == len(b) for b in B.tolist())  # no row twice in one batch


def test_same_seed_same_batches_other_epoch_or_seed_other_batches():
    Y = bccd_labels()
    make = lambda seed, fold=0: RareBatchSampler(Y, 32, 2, seed=seed, fold=fold)  # noqa: E731
    first, again = make(7), make(7)
    assert list(first) == list(again)  # rows and augmentation seeds
    again.set_epoch(2)
    resumed = list(again)  # a fresh sampler set to epoch 2 = a run resumed there
    first.set_epoch(0), list(first), first.set_epoch(1), list(first), first.set_epoch(2)
    assert list(first) == resumed
    assert not np.array_equal(epoch_rows(make(7), 0), epoch_rows(make(7), 1))
    assert not np.array_equal(epoch_rows(make(7)), epoch_rows(make(8)))
    assert not np.array_equal(epoch_rows(make(7, fold=0)), epoch_rows(make(7, fold=1)))


def test_epoch_length_is_whole_batches_and_fixed():
    Y = bccd_labels()
    sampler = RareBatchSampler(Y, 32, 2, seed=0, fold=0)
    assert len(sampler) == 292 // 32 * 32
    assert {len(epoch_rows(sampler, e)) for e in range(5)} == {len(sampler)}
    small = RareBatchSampler(Y[:20], 32, 2, seed=0, fold=0)  # fewer rows than a batch: every row, once
    assert sorted(epoch_rows(small).tolist()) == list(range(20))


def test_the_rest_of_each_batch_is_the_plain_shuffle():
    """Only as many rows as the rare labels need are replaced, and only by rare positives."""
    Y = bccd_labels()
    sampler = RareBatchSampler(Y, 32, 2, seed=5, fold=2)
    plain = np.random.default_rng([5, 2, 0]).permutation(len(Y))[:len(sampler)]
    composed = epoch_rows(sampler, 0)
    changed = composed != plain
    per_batch = changed.reshape(-1, 32).sum(axis=1)
    assert per_batch.max() <= sampler.need.sum() and changed.any()
    assert Y[composed[changed]][:, sampler.labels].max(axis=1).min() == 1


def test_plain_epoch_sampler_order_is_unchanged():
    """--batch-sampler plain keeps the runs made before the rare sampler existed."""
    rng = np.random.default_rng([3, 1, 4])
    order, seeds = rng.permutation(50), rng.integers(0, 2**31 - 1, size=50)
    sampler = EpochSampler(50, seed=3, fold=1, shuffle=True)
    sampler.set_epoch(4)
    assert list(sampler) == list(zip(order.tolist(), seeds.tolist()))


def test_data_parallel_shares_make_up_the_global_batches():
    Y = bccd_labels()
    whole = RareBatchSampler(Y, 32, 2, seed=2, fold=0)
    shares = [RareBatchSampler(Y, 32, 2, seed=2, fold=0, rank=r, world=4) for r in range(4)]
    whole_items = list(whole)
    parts = [list(s) for s in shares]
    assert {len(p) for p in parts} == {len(whole) // 4} and all(len(s) == len(whole) // 4 for s in shares)
    for b in range(len(whole) // 32):  # batch b of every rank (8 rows each) = global batch b
        local = sorted(item for p in parts for item in p[b * 8:(b + 1) * 8])
        assert local == sorted(whole_items[b * 32:(b + 1) * 32])
    with pytest.raises(BalanceError, match="multiple of world"):
        RareBatchSampler(Y, 30, 2, seed=2, fold=0, rank=0, world=4)


def test_selective_weighting_balances_the_rare_label_in_every_rare_batch():
    """Why the sampler exists: selective learning acts per batch, and only on batches that hold the label."""
    Y = bccd_labels()
    target = torch.tensor(target_rates(Y, "uniform", MULTILABEL))
    basophil = 0

    def balanced_share(rows):
        W = [selective_weights(torch.tensor(Y[b]), target, torch.Generator().manual_seed(i))
             for i, b in enumerate(rows.reshape(-1, 32))]
        return np.mean([(w[:, basophil] != 1).any().item() for w in W])

    rare = epoch_rows(RareBatchSampler(Y, 32, 1, seed=0, fold=0))
    plain = epoch_rows(EpochSampler(len(Y), seed=0, fold=0, shuffle=True))[:len(rare)]
    assert balanced_share(rare) == 1.0
    assert balanced_share(plain) < 0.5


def test_labels_that_need_over_half_a_batch():
    Y = np.eye(10)[np.arange(400) % 10]  # 10 classes, 4 per batch of 40 on average: all rare at 5
    sampler = RareBatchSampler(Y, 40, 5, seed=0, fold=0)
    assert len(sampler.labels) == 4 and len(sampler.left_out) == 6  # 4 x 5 = 20 = half a batch
    with pytest.raises(BalanceError, match="needs 50 rows of every batch of 40 for 10 rare labels"):
        check_rare_batches(Y, 40, 5, "data/train.csv")
    check_rare_batches(Y, 40, 2, "data/train.csv")  # none rare at 2: fine
    with pytest.raises(BalanceError, match="more than a batch"):
        compose_rare_batches(np.arange(400), Y > 0, np.arange(10), np.full(10, 5), 40,
                             np.random.default_rng(0))


def test_train_sampler_choices_and_config_rules():
    Y = bccd_labels()
    assert type(train_sampler("plain", Y, len(Y), 32, 2, 0, 0, log=lambda m: None)) is EpochSampler
    said = []
    sampler = train_sampler("rare", Y[:100], 150, 32, 2, 0, 0, log=said.append)  # 50 rows without labels
    assert isinstance(sampler, RareBatchSampler) and "rare batch sampler" in said[0]
    assert epoch_rows(sampler).max() < 150 and Y[epoch_rows(sampler).reshape(-1, 32), 0].sum(axis=1).min() >= 1
    with pytest.raises(BalanceError, match="row weights"):
        train_sampler("rare", Y, len(Y), 32, 2, 0, 0, row_weights=np.ones(len(Y)))
    with pytest.raises(ValueError, match="both choose the rows of a batch"):
        validate_config(TrainConfig(balance="sampler", batch_sampler="rare"))
    with pytest.raises(ValueError, match="rare_per_batch must be >= 1"):
        validate_config(TrainConfig(rare_per_batch=0))


def test_kit_cv_with_the_rare_sampler_and_selective_weighting(tmp_path, cv_args, small_bccd):
    args = ["--epochs", "1", "--batch-size", "16", "--balance", "selective"]
    assert cv.main(cv_args(small_bccd, "rare", *args, "--batch-sampler", "rare", "--rare-per-batch", "2")) == 0
    config = json.loads((tmp_path / "oof" / "rare" / "config.json").read_text())
    assert (config["train"]["batch_sampler"], config["train"]["rare_per_batch"]) == ("rare", 2)
    assert cv.main(cv_args(small_bccd, "plain", *args)) == 0
    rare = pd.read_csv(tmp_path / "oof" / "rare" / "oof.csv").set_index("id")
    plain = pd.read_csv(tmp_path / "oof" / "plain" / "oof.csv").set_index("id").loc[rare.index]
    assert rare.fold.equals(plain.fold) and not np.allclose(rare.drop(columns="fold"), plain.drop(columns="fold"))


def test_kit_cv_refuses_rare_labels_that_cannot_fit_before_any_work(tmp_path, cv_args, small_digits, capsys):
    # digits: 10 classes of 30 rows, 3 per batch of 32 on average; at 4 per batch all 10 are rare: 40 > 16
    capsys.readouterr()
    code = cv.main(cv_args(small_digits, "nofit", "--batch-sampler", "rare", "--rare-per-batch", "4"))
    err = capsys.readouterr().err
    assert code == 2 and "needs 40 rows of every batch of 32 for 10 rare labels" in err, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "oof" / "nofit").exists() and not (tmp_path / "folds").exists()
    assert MULTICLASS == load_competition(small_digits).task


class Interrupt(Exception):
    pass


def test_a_run_interrupted_after_an_epoch_resumes_to_the_same_result(tmp_path, cache_dir, small_bccd):
    """The rare batches of the epochs after a resume are those of the uninterrupted run (pure function of
    seed, fold and epoch): predictions and history match exactly."""
    def config(name):
        return TrainConfig(data=str(small_bccd), model="test_resnet", folds=2, epochs=3, img_size=32,
                           batch_size=16, balance="selective", batch_sampler="rare", rare_per_batch=2,
                           device="cpu", num_workers=0, channels_last=False, name=name,
                           oof_dir=str(tmp_path / "oof"), folds_dir=str(tmp_path / "folds"),
                           cache_dir=str(cache_dir))

    def stop_after_first_epoch(fold, epoch, score):
        if fold == 0 and epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_cv(config("resumed"), quiet=True, on_epoch=stop_after_first_epoch, log=lambda m: None)
    assert (tmp_path / "oof" / "resumed" / "fold0" / "last.pt").exists()
    run_cv(config("resumed"), resume=True, quiet=True, log=lambda m: None)
    run_cv(config("straight"), quiet=True, log=lambda m: None)
    read = lambda name, f: pd.read_csv(tmp_path / "oof" / name / f).drop(columns="seconds", errors="ignore")  # noqa: E731
    for name in ("oof.csv", "test.csv", "summary.csv"):
        pd.testing.assert_frame_equal(read("resumed", name), read("straight", name), rtol=0, atol=1e-6)

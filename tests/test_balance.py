"""Exact checks of kit.balance on hand-made batches, seeded random batches and real labels (embedded BCCD,
scikit-learn digits)."""
from fractions import Fraction
from math import ceil

import numpy as np
import pandas as pd
import pytest
import torch

from kit.balance import (BALANCE_METHODS, BalanceError, BatchBalancer, class_weights, cutmix_batch,
                         mixup_batch, selective_weights, selective_weights_multiclass, target_rates)
from kit.data import EMBEDDED_DATA
from kit.metrics import MULTICLASS, MULTILABEL
from kit.sampling import sampler_weights


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def column(n_pos, n_neg):
    return torch.tensor([1.0] * n_pos + [0.0] * n_neg).reshape(-1, 1)


def positive_share(W, Y):
    return ((W * Y).sum(0) / W.sum(0)).double()


# ---------------------------------------------------------------- multi-label selective learning

def test_over_represented_positives_drop_positives_only():
    Y = column(6, 2)  # rate 0.75 > 0.5: keep ceil(0.5 * 2 / 0.5) = 2 positives and both negatives
    W = selective_weights(Y, torch.tensor([0.5]), gen())
    pos, neg = W[:6, 0], W[6:, 0]
    assert (pos == 0).sum() == 4 and (pos > 0).sum() == 2
    assert torch.all(pos[pos > 0] == 2.0) and torch.all(neg == 2.0)  # 0.5 * 8 / 2 each
    assert W.sum() == pytest.approx(8) and positive_share(W, Y) == pytest.approx(0.5, abs=1e-6)


def test_under_represented_positives_drop_negatives_and_upweight():
    Y = column(1, 7)  # rate 1/8 < 0.3: keep ceil(0.7 * 1 / 0.3) = 3 negatives
    W = selective_weights(Y, torch.tensor([0.3]), gen())
    assert W[0, 0] == pytest.approx(0.3 * 8)
    neg = W[1:, 0]
    assert (neg > 0).sum() == 3 and (neg == 0).sum() == 4
    assert torch.allclose(neg[neg > 0], torch.tensor(0.7 * 8 / 3))
    assert W.sum() == pytest.approx(8) and positive_share(W, Y) == pytest.approx(0.3, abs=1e-6)


def test_kept_count_is_exact_when_the_target_lands_on_an_integer():
    # 0.25 * 6 / 0.75 = 2 exactly in rationals but not in floating point: must keep 2, not 3
    W = selective_weights(column(5, 6), torch.tensor([0.25]), gen())
    assert (W[:5, 0] > 0).sum() == 2 and (W[5:, 0] > 0).sum() == 6
    # 0.2 * 6 / 0.8 = 1.5 -> ceil keeps 2
    W = selective_weights(column(5, 6), torch.tensor([0.2]), gen())
    assert (W[:5, 0] > 0).sum() == 2


def test_batch_already_at_target_is_unweighted():
    W = selective_weights(column(2, 6), torch.tensor([0.25]), gen())
    assert torch.equal(W, torch.ones_like(W))


@pytest.mark.parametrize("Y, t", [(column(0, 8), 0.5), (column(8, 0), 0.5),
                                  (column(3, 5), 0.0), (column(3, 5), 1.0)])
def test_labels_that_cannot_be_balanced_keep_weight_one(Y, t):
    W = selective_weights(Y, torch.tensor([t]), gen())
    assert torch.equal(W, torch.ones_like(W))


def test_columns_are_independent_and_fold_without_positives_is_untouched():
    Y = torch.cat([column(6, 2), column(1, 7), column(0, 8)], dim=1)
    Y_train = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    target = torch.tensor(target_rates(Y_train, "uniform", MULTILABEL))
    assert target.tolist() == [0.5, 0.5, 0.0]
    W = selective_weights(Y, target, gen())
    for c in range(2):
        assert positive_share(W[:, [c]], Y[:, [c]]).item() == pytest.approx(0.5, abs=1e-6)
        assert W[:, c].sum() == pytest.approx(8)
    assert torch.equal(W[:, 2], torch.ones(8))


def test_randomness_follows_the_generator():
    Y = (torch.rand(64, 10, generator=gen(1)) < 0.2).float()
    target = torch.full((10,), 0.5)
    assert torch.equal(selective_weights(Y, target, gen(7)), selective_weights(Y, target, gen(7)))
    assert not torch.equal(selective_weights(Y, target, gen(7)), selective_weights(Y, target, gen(8)))


def test_bad_inputs_raise():
    with pytest.raises(BalanceError, match="0/1"):
        selective_weights(torch.tensor([[0.9], [0.0]]), torch.tensor([0.5]), gen())
    with pytest.raises(BalanceError, match="one rate per label"):
        selective_weights(column(2, 2), torch.tensor([0.5, 0.5]), gen())
    with pytest.raises(BalanceError, match=r"\[0, 1\]"):
        selective_weights(column(2, 2), torch.tensor([1.5]), gen())


def test_mass_invariants_on_random_batches():
    rng = np.random.default_rng(0)
    g = gen(3)
    for _ in range(300):
        B, C = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        Y = torch.tensor(rng.random((B, C)) < rng.random(C), dtype=torch.float32)
        twentieths = rng.integers(0, 21, C)
        W = selective_weights(Y, torch.tensor(twentieths / 20), g)
        for c in range(C):
            y, w, t = Y[:, c], W[:, c], Fraction(int(twentieths[c]), 20)
            p, n = int(y.sum()), B - int(y.sum())
            if p == 0 or n == 0 or t in (0, 1):
                assert torch.equal(w, torch.ones(B))
                continue
            k_pos = max(1, min(p, ceil(t * n / (1 - t))))
            k_neg = max(1, min(n, ceil((1 - t) * p / t)))
            assert int((w[y == 1] > 0).sum()) == k_pos and int((w[y == 0] > 0).sum()) == k_neg
            assert k_pos == p or k_neg == n  # only the over-represented side is thinned
            assert torch.all(w >= 0) and w.sum().item() == pytest.approx(B, rel=1e-6)
            assert (w * y).sum().item() / w.sum().item() == pytest.approx(float(t), abs=1e-6)


# ---------------------------------------------------------------- multi-class selective learning

def shares(w, y, C):
    return [w[y == c].sum().item() / w.sum().item() for c in range(C)]


def test_multiclass_uniform_target_keeps_one_row_per_class_when_one_class_has_one():
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])  # scale = min(5, 2, 1) * 3 = 3 -> keep 1 of each
    w = selective_weights_multiclass(y, torch.full((3,), 1 / 3), gen())
    assert [int((w[y == c] > 0).sum()) for c in range(3)] == [1, 1, 1]
    assert torch.allclose(w[w > 0], torch.tensor(8 / 3)) and w.sum() == pytest.approx(8)


def test_multiclass_non_uniform_target_and_absent_class_renormalised():
    y = torch.tensor([0, 0, 1, 1, 1, 1, 2, 2])  # shares (.4, .2, .2) of present -> (.5, .25, .25)
    w = selective_weights_multiclass(y, torch.tensor([0.4, 0.2, 0.2, 0.2]), gen())
    assert [int((w[y == c] > 0).sum()) for c in range(3)] == [2, 1, 1]  # scale = min(4, 16, 8) = 4
    assert shares(w, y, 3) == pytest.approx([0.5, 0.25, 0.25], abs=1e-6)
    assert w.sum() == pytest.approx(8) and (w == 0).sum() == 4


def test_multiclass_zero_target_class_keeps_weight_one_and_others_share_the_rest():
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    w = selective_weights_multiclass(y, torch.tensor([0.5, 0.5, 0.0]), gen())
    assert torch.equal(w[y == 2], torch.ones(2))
    assert w[y == 0].sum() == pytest.approx(2) and w[y == 1].sum() == pytest.approx(2)
    assert w.sum() == pytest.approx(6)


def test_multiclass_bad_indices_raise():
    with pytest.raises(BalanceError, match="class indices"):
        selective_weights_multiclass(torch.tensor([0, 3]), torch.full((3,), 1 / 3), gen())


def test_multiclass_invariants_on_random_batches():
    rng = np.random.default_rng(1)
    g = gen(4)
    for _ in range(300):
        B, C = int(rng.integers(1, 40)), int(rng.integers(2, 7))
        y = torch.tensor(rng.choice(C, B, p=rng.dirichlet(np.ones(C) * 0.5)))
        target = torch.tensor(rng.dirichlet(np.ones(C)))
        w = selective_weights_multiclass(y, target, g)
        counts = np.bincount(y.numpy(), minlength=C)
        present = counts > 0
        expected = target.numpy() * present / (target.numpy() * present).sum()
        assert shares(w, y, C) == pytest.approx(expected.tolist(), abs=1e-6)
        assert w.sum().item() == pytest.approx(B, rel=1e-6)
        kept = np.array([int((w[y == c] > 0).sum()) for c in range(C)])
        assert np.all(kept[present] >= 1) and np.all(kept <= counts)
        assert np.any(kept[present] == counts[present])  # the limiting class keeps every row
        for c in np.flatnonzero(present):  # kept rows of a class share one weight
            kept_w = w[(y == c) & (w > 0)]
            assert torch.allclose(kept_w, kept_w[0].expand_as(kept_w))


def test_multiclass_randomness_follows_the_generator():
    y = torch.tensor(np.random.default_rng(2).choice(4, 64, p=[0.7, 0.1, 0.1, 0.1]))
    t = torch.full((4,), 0.25)
    assert torch.equal(selective_weights_multiclass(y, t, gen(5)), selective_weights_multiclass(y, t, gen(5)))
    assert not torch.equal(selective_weights_multiclass(y, t, gen(5)), selective_weights_multiclass(y, t, gen(6)))


# ---------------------------------------------------------------- targets and the baselines

Y_ML = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1], [1, 0, 0, 1]])
Y_MC = np.eye(3, dtype=int)[[0, 0, 0, 0, 1, 1, 2, 0]]  # counts 5, 2, 1


def test_target_rates():
    assert target_rates(Y_ML, "uniform", MULTILABEL).tolist() == [0.5, 0.0, 0.5, 1.0]
    assert target_rates(Y_ML, "train", MULTILABEL).tolist() == pytest.approx([0.4, 0.0, 0.2, 1.0])
    assert target_rates(Y_ML, 0.5, MULTILABEL).tolist() == pytest.approx([0.45, 0.0, 0.35, 1.0])
    assert target_rates(Y_ML, "0.5", MULTILABEL).tolist() == pytest.approx([0.45, 0.0, 0.35, 1.0])
    Y4 = np.hstack([Y_MC, np.zeros((8, 1), int)])  # class 3 never occurs
    assert target_rates(Y4, "uniform", MULTICLASS).tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])
    assert target_rates(Y4, "train", MULTICLASS).tolist() == pytest.approx([5 / 8, 2 / 8, 1 / 8, 0])
    mixed = target_rates(Y4, 0.25, MULTICLASS)
    assert mixed.sum() == pytest.approx(1) and mixed[0] == pytest.approx(0.25 / 3 + 0.75 * 5 / 8)
    for bad in ("balanced", 1.5, -0.1, None, float("nan")):
        with pytest.raises(BalanceError, match="target"):
            target_rates(Y_ML, bad, MULTILABEL)


def test_label_matrix_validation_names_the_row():
    with pytest.raises(BalanceError, match="row 1"):
        class_weights(np.array([[1, 0], [2, 0]]), MULTILABEL)
    with pytest.raises(BalanceError, match="one-hot; row 2"):
        sampler_weights(np.array([[1, 0], [0, 1], [1, 1]]), MULTICLASS)
    with pytest.raises(BalanceError, match="task"):
        class_weights(Y_ML, "regression")


def test_class_weights():
    Y = np.zeros((300, 4), int)
    Y[:60, 0] = 1      # 240 / 60 = 4
    Y[:, 2] = 1        # no negatives -> 1
    Y[:2, 3] = 1       # 298 / 2 = 149 -> clipped to 100 ; label 1 has no positive -> 1
    assert class_weights(Y, MULTILABEL).tolist() == pytest.approx([4.0, 1.0, 1.0, 100.0])
    Y[:280, 1] = 1     # 20 / 280 -> clipped from below at 1 / 10
    assert class_weights(Y, MULTILABEL, max_weight=10)[1].item() == pytest.approx(0.1)
    inverse = np.array([1 / 5, 1 / 2, 1 / 1])
    assert class_weights(Y_MC, MULTICLASS).tolist() == pytest.approx((inverse / inverse.mean()).tolist())
    absent = class_weights(np.hstack([Y_MC, np.zeros((8, 1), int)]), MULTICLASS)
    assert absent[3] == 1 and absent[:3].mean() == pytest.approx(1)


def test_sampler_weights_make_expected_class_draws_uniform():
    w = sampler_weights(Y_MC, MULTICLASS)
    expected = (Y_MC * w[:, None]).sum(0) / w.sum()
    assert expected.tolist() == pytest.approx([1 / 3] * 3)
    # disjoint labels plus rows with no label: every label and the empty rows drawn equally often
    Y = np.zeros((10, 3), int)
    Y[:6, 0] = 1
    Y[6:8, 1] = 1
    Y[8, 2] = 1
    w = sampler_weights(Y, MULTILABEL)
    assert w[9] == pytest.approx(1 / 6)  # empty row -> weight of the most common label
    expected = (Y * w[:, None]).sum(0) / w.sum()
    assert expected.tolist() == pytest.approx([6 / 6 / w.sum(), 2 / 2 / w.sum(), 1 / w.sum()])
    assert expected[0] == pytest.approx(expected[1]) == pytest.approx(expected[2])
    Y[0, 2] = 1  # a row with a common and a rare label takes the rare label's weight
    assert sampler_weights(Y, MULTILABEL)[0] == pytest.approx(1 / 2)
    assert sampler_weights(np.zeros((3, 2), int), MULTILABEL).tolist() == [1, 1, 1]


# ---------------------------------------------------------------- dispatcher and augmentations

@pytest.mark.parametrize("method", BALANCE_METHODS)
@pytest.mark.parametrize("task, Y_train", [(MULTILABEL, Y_ML), (MULTICLASS, Y_MC)])
def test_batch_balancer_dispatch(method, task, Y_train):
    balancer = BatchBalancer(method, task, Y_train)
    Y_batch = torch.tensor(Y_train, dtype=torch.float32)
    weights = balancer.loss_weights(Y_batch, gen())
    assert (balancer.sampler_weights is not None) == (method == "sampler")
    assert (balancer.pos_weight is not None) == (method == "class-weight" and task == MULTILABEL)
    assert (balancer.class_weight is not None) == (method == "class-weight" and task == MULTICLASS)
    if method != "selective":
        assert weights is None
    elif task == MULTILABEL:
        assert weights.shape == Y_batch.shape
        assert torch.equal(weights, selective_weights(Y_batch, balancer.target, gen()))
    else:
        assert weights.shape == (len(Y_batch),)
        indices = Y_batch.argmax(1)
        assert torch.equal(weights, balancer.loss_weights(indices, gen()))
        assert torch.equal(weights, selective_weights_multiclass(indices, balancer.target, gen()))
    with pytest.raises(BalanceError, match="method"):
        BatchBalancer("oversample", task, Y_train)


def test_selective_on_real_bccd_and_digits_labels(small_digits):
    bccd = pd.read_csv(EMBEDDED_DATA / "train.csv")
    labels = bccd["labels"].fillna("").str.split()
    classes = sorted({c for row in labels for c in row})
    Y = np.array([[c in row for c in classes] for row in labels], dtype=int)
    balancer = BatchBalancer("selective", MULTILABEL, Y, target=0.5)
    g = gen(9)
    for start in range(0, len(Y), 32):
        Yb = torch.tensor(Y[start:start + 32], dtype=torch.float32)
        W = balancer.loss_weights(Yb, g)
        assert torch.allclose(W.sum(0), torch.full((len(classes),), float(len(Yb))), rtol=1e-6)
        mixed = (Yb.sum(0) > 0) & (Yb.sum(0) < len(Yb))
        assert torch.allclose(positive_share(W, Yb)[mixed], balancer.target[mixed], atol=1e-6)
    # sorted by class, so the batch below holds only some of the classes (the absent ones get no weight)
    digits = pd.read_csv(small_digits / "train.csv").sort_values("label", kind="stable")
    names = sorted(digits["label"].unique())
    y = digits["label"].map({n: i for i, n in enumerate(names)}).to_numpy()
    balancer = BatchBalancer("selective", MULTICLASS, np.eye(len(names), dtype=int)[y])
    w = balancer.loss_weights(torch.tensor(y[:256]), g)
    present = np.unique(y[:256])
    assert shares(w, torch.tensor(y[:256]), len(names)) == pytest.approx(
        [1 / len(present) if c in present else 0 for c in range(len(names))], abs=1e-6)


def test_mixup_is_reproducible_and_mixes_targets_like_inputs():
    x = torch.arange(8, dtype=torch.float32).reshape(8, 1, 1, 1).expand(8, 3, 4, 4).contiguous()
    Y = torch.eye(8)  # row i is image i, so a mixed target says which images went into a mixed input
    xm, Ym = mixup_batch(x, Y, 0.4, gen(1))
    xm2, Ym2 = mixup_batch(x, Y, 0.4, gen(1))
    assert torch.equal(xm, xm2) and torch.equal(Ym, Ym2)
    assert not torch.equal(xm, mixup_batch(x, Y, 0.4, gen(2))[0])
    assert torch.allclose(Ym.sum(1), torch.ones(8))
    assert torch.allclose(xm[:, 0, 0, 0], Ym @ torch.arange(8, dtype=torch.float32), atol=1e-5)
    assert not torch.equal(Ym, Y)  # something was mixed
    with pytest.raises(BalanceError, match="alpha"):
        mixup_batch(x, Y, 0.0, gen())


def test_cutmix_target_mix_equals_pasted_area():
    B, H, W = 6, 10, 12
    x = torch.arange(B, dtype=torch.float32).reshape(B, 1, 1, 1).expand(B, 1, H, W).contiguous()
    Y = torch.eye(B)
    for seed in range(20):
        xm, Ym = cutmix_batch(x, Y, 1.0, gen(seed))
        assert torch.equal(xm, cutmix_batch(x, Y, 1.0, gen(seed))[0])
        for i in range(B):
            own = (xm[i] == i).float().mean().item()
            assert Ym[i, i].item() == pytest.approx(own, abs=1e-6)
            assert Ym[i].sum().item() == pytest.approx(1)

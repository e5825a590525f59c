"""bench/imbalance.py helpers: the made-rare multi-class variant, per-label scores, rare labels, the tables."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from competitions import digits_competition
from conftest import ROOT, SHARED_DATA
from sklearn.metrics import f1_score

from kit.data import EMBEDDED_DATA, load_competition
from kit.metrics import MULTICLASS, MULTILABEL

_spec = importlib.util.spec_from_file_location("bench_imbalance", ROOT / "bench" / "imbalance.py")
imb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(imb)


def check_rare_variant(source: Path, dest_root: Path, rare: str) -> None:
    """The bench's setting: `rare` cut to 5% of its rows, about 600 training rows in all."""
    full = pd.read_csv(source / "train.csv")
    dest = imb.make_rare_variant(source, dest_root, rare, 0.05, 600, seed=0)
    train = pd.read_csv(dest / "train.csv")
    counts = train.label.value_counts()
    assert counts[rare] == round(0.05 * (full.label == rare).sum())
    assert abs(len(train) - 600) <= len(counts)  # rounding per class
    assert set(train.id) <= set(full.id) and train.id.is_unique
    others = counts.drop(rare) / full.label.value_counts().drop(rare)
    assert others.max() - others.min() < 0.02  # the other classes shrink alike (stratified)
    comp = load_competition(dest)
    assert comp.task == MULTICLASS and len(comp.train_ids) == len(train)
    assert list(comp.test_ids) == list(pd.read_csv(source / "test.csv", dtype=str).id)
    # deterministic and reused: a second call changes nothing
    before = (dest / "train.csv").read_bytes()
    assert imb.make_rare_variant(source, dest_root, rare, 0.05, 600, seed=0) == dest
    assert (dest / "train.csv").read_bytes() == before
    with pytest.raises(SystemExit, match="no class 'nope'"):
        imb.make_rare_variant(source, dest_root / "other", "nope", 0.05, 600, seed=0)


def test_rare_variant_keeps_five_percent_and_the_whole_test_set(tmp_path):
    source = digits_competition(tmp_path / "digits", n_train=1000, n_test=50, size=8)  # 100 rows per digit
    check_rare_variant(source, tmp_path / "variants", "seven")


@pytest.mark.shared
def test_rare_variant_of_the_real_pbc(tmp_path):
    check_rare_variant(SHARED_DATA / "pbc", tmp_path, "monocyte")


def test_per_label_scores_multiclass_is_one_vs_rest_f1_of_argmax():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    Y = np.eye(4)[y]
    P = rng.dirichlet(np.ones(4), 200) + 0.8 * Y
    P /= P.sum(1, keepdims=True)
    scores = imb.per_label_scores(Y, P, np.eye(4)[(P.argmax(1) + 1) % 4], MULTICLASS, list("abcd"))
    pred = P.argmax(1)
    expected = [f1_score(y == c, pred == c) for c in range(4)]
    assert np.allclose(scores.f1, expected)
    assert np.allclose(scores.f1_tuned, [f1_score(y == c, (pred + 1) % 4 == c) for c in range(4)])
    assert (scores.auc > 0.5).all() and list(scores.n_pos) == list(np.bincount(y, minlength=4))


def test_per_label_scores_multilabel_threshold_and_missing_positives():
    Y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], dtype=float)
    P = np.array([[0.9, 0.1], [0.4, 0.2], [0.6, 0.3], [0.1, 0.6]])
    scores = imb.per_label_scores(Y, P, (P >= 0.35).astype(int), MULTILABEL, ["x", "y"])
    assert scores.auc[0] == pytest.approx(0.75)      # 3 of 4 positive/negative pairs ordered right
    assert scores.f1[0] == pytest.approx(0.5)        # at 0.5: one TP, one FN, one FP
    assert scores.f1_tuned[0] == pytest.approx(0.8)  # at 0.35: two TP, one FP
    assert np.isnan(scores.auc[1]) and scores.f1[1] == 0


@pytest.mark.parametrize("task", [MULTILABEL, MULTICLASS])
def test_nested_tuned_decisions_never_see_the_labels_they_decide(task):
    rng = np.random.default_rng(1)
    n, C = 300, 3
    if task == MULTICLASS:
        Y = np.eye(C)[rng.integers(0, C, n)]
        P = rng.dirichlet(np.ones(C), n) + Y * rng.random((n, 1))
        P /= P.sum(1, keepdims=True)
    else:
        Y = (rng.random((n, C)) < 0.2).astype(float)
        P = np.clip(0.3 * Y + 0.5 * rng.random((n, C)), 0, 1)
    folds = np.arange(n) % 3
    D = imb.nested_tuned_decisions(Y, P, folds, task)
    shuffled = Y.copy()
    shuffled[folds == 0] = Y[folds == 0][::-1]   # other labels in fold 0 only
    D2 = imb.nested_tuned_decisions(shuffled, P, folds, task)
    assert (D[folds == 0] == D2[folds == 0]).all()
    assert D.shape == Y.shape and set(np.unique(D)) <= {0, 1}


def test_rare_labels_by_prevalence_or_share():
    Y = np.zeros((100, 4))
    Y[:50, 0] = 1
    Y[:10, 1] = 1
    Y[:14, 2] = 1
    Y[:16, 3] = 1
    assert list(imb.rare_labels(Y, MULTILABEL, 0.15, 0.5)) == [False, True, True, False]
    y = np.r_[np.zeros(60), np.ones(30), np.full(10, 2)].astype(int)   # shares .6 .3 .1, uniform 1/3
    assert list(imb.rare_labels(np.eye(3)[y], MULTICLASS, 0.15, 0.5)) == [False, False, True]


def test_test_labels_read_the_solution_in_prediction_order():
    solution = EMBEDDED_DATA / "solution.csv"
    truth = pd.read_csv(solution, dtype=str)
    ids = truth.id[::-1].reset_index(drop=True)
    classes = sorted({c for s in truth.labels for c in s.split()})
    Y = imb.test_labels(solution, ids, classes)
    assert Y.shape == (len(truth), len(classes))
    first = truth.set_index("id").loc[ids[0], "labels"].split()
    assert list(Y[0]) == [float(c in first) for c in classes]
    assert Y[:, classes.index("BASOPHIL")].sum() == sum("BASOPHIL" in s.split() for s in truth.labels)
    with pytest.raises(ValueError, match="outside the run's classes"):
        imb.test_labels(solution, ids, [c for c in classes if c != "WBC"])


def test_tables_report_mean_std_and_paired_deltas():
    rows = []
    for seed, (none, sel) in enumerate([(0.60, 0.70), (0.70, 0.75), (0.80, 0.78)]):
        for method, value in (("none", none), ("selective", sel)):
            rows.append({"dataset": "d", "split": "oof", "method": method, "seed": seed, "label": imb.MACRO_RARE,
                         "rare": True, "n_pos": 5, "auc": value, "f1": value / 2, "f1_tuned": value})
    text = imb.markdown_tables(pd.DataFrame(rows), ["none", "selective"])
    assert "0.700 ± 0.100" in text                                   # none AUC over 3 seeds
    assert "AUC +0.043 ± 0.060 (better in 2/3)" in text              # deltas 0.10, 0.05, -0.02
    assert "F1@0.5 +0.022 ± 0.030 (better in 2/3)" in text


def test_rare_sampler_methods_parse_and_are_compared_with_their_balance():
    assert imb.parse_method("selective+rare") == ("selective", "uniform", "rare")
    assert imb.parse_method("rare") == ("none", "uniform", "rare")
    assert imb.parse_method("selective:0.5") == ("selective", "0.5", "plain")
    for spec in ("selective+rare", "rare", "selective:0.5+rare", "class-weight"):
        assert imb.method_label(*imb.parse_method(spec)) == spec
    for bad in ("selective+x", "rare+rare", "rare:0.5"):
        with pytest.raises(SystemExit, match="method"):
            imb.parse_method(bad)
    methods = ["none", "selective", "rare", "selective+rare"]
    assert imb.comparisons(methods) == [("selective", "none"), ("rare", "none"), ("selective+rare", "none"),
                                        ("selective+rare", "selective")]
    rows = [{"dataset": "d", "split": "test", "method": m, "seed": seed, "label": label, "rare": True,
             "n_pos": 5, "auc": value + 0.1 * (label == imb.MACRO_ALL), "f1": value, "f1_tuned": value}
            for seed in range(2) for m, value in (("selective", 0.5 + 0.1 * seed), ("selective+rare", 0.7))
            for label in (imb.MACRO_RARE, imb.MACRO_ALL)]
    long = pd.DataFrame(rows)
    text = imb.markdown_tables(long, ["selective", "selective+rare"])
    assert "selective+rare − selective, macro (rare), paired over 2 seeds: AUC +0.150 ± 0.071 (better in 2/2)" in text
    summary = imb.summary_table(long, ["selective", "selective+rare"]).splitlines()
    assert summary[2] == "| d, test | selective | 0.550 ± 0.071 | 0.550 ± 0.071 | 0.550 ± 0.071 | 0.650 ± 0.071 |"
    assert summary[3] == "|  | selective+rare | 0.700 ± 0.000 | 0.700 ± 0.000 | 0.700 ± 0.000 | 0.800 ± 0.000 |"

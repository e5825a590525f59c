"""F-beta decision metrics: name parsing, counts vs sklearn, exact per-class thresholds, exact coordinate ascent
for micro / samples F-beta (multi-label) and macro F-beta biases (multi-class)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import fbeta_score

import kit.tune.thresholds as th
from kit.metrics import MULTICLASS, MULTILABEL, MetricNameError, decision_metric, metric_name, parse_metric
from kit.tune.fbeta import best_threshold

BETAS = (0.5, 1.0, 2.0)


def multilabel_data(seed, n=150, n_classes=4, ties=False):
    """Labels of varied prevalence (some rows without any label), under-confident positives."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, n_classes)) < rng.uniform(0.05, 0.6, n_classes)).astype(float)
    P = 1 / (1 + np.exp(-(rng.normal(size=Y.shape) + rng.uniform(0.5, 2.5, n_classes) * Y - 1.5)))
    return Y, (np.round(P, 1) if ties else P)


def multiclass_data(seed, n=150, n_classes=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += 1.5
    logits[:, 1] -= 1.5                                        # an under-predicted class
    P = np.exp(logits)
    return np.eye(n_classes)[y], P / P.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- metric names

@pytest.mark.parametrize("name, parsed, canonical", [
    ("f1", ("macro", 1.0), "macro_f1"), ("F2", ("macro", 2.0), "macro_f2"), ("f0.5", ("macro", 0.5), "macro_f0.5"),
    ("macro_f1", ("macro", 1.0), "macro_f1"), ("micro_f1", ("micro", 1.0), "micro_f1"),
    ("samples_f2", ("samples", 2.0), "samples_f2"), ("samples_f2.0", ("samples", 2.0), "samples_f2"),
    ("micro_f.5", ("micro", 0.5), "micro_f0.5"), ("accuracy", ("accuracy", None), "accuracy")])
def test_metric_names_parse_to_average_and_beta(name, parsed, canonical):
    assert parse_metric(name) == parsed
    assert metric_name(name) == canonical
    assert parse_metric(canonical) == parsed                   # the canonical name round-trips


@pytest.mark.parametrize("name", ["f0", "f-1", "f", "fx", "weighted_f1", "samples", "macro", "f1e3", "auc", ""])
def test_unknown_metric_names_list_the_forms(name):
    with pytest.raises(MetricNameError, match="macro_fB.*micro_fB.*samples_fB"):
        parse_metric(name)


def test_tunable_metrics_depend_on_the_task():
    assert th.check_metric("f2", MULTILABEL) == "macro_f2"
    assert th.check_metric("samples_f2", MULTILABEL) == "samples_f2"
    assert th.check_metric("F0.5", MULTICLASS) == "macro_f0.5"
    with pytest.raises(ValueError, match="micro_f1.*multiclass.*accuracy or macro_fB"):
        th.check_metric("micro_f1", MULTICLASS)
    with pytest.raises(ValueError, match="accuracy.*multilabel"):
        th.check_metric("accuracy", MULTILABEL)
    with pytest.raises(ValueError, match="unknown decision metric 'weighted_f2'"):
        th.check_metric("weighted_f2", MULTILABEL)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("average", ["macro", "micro", "samples"])
def test_decision_metric_equals_sklearn_fbeta(average, beta):
    Y, P = multilabel_data(0, n=200)
    Y[:5], P[3:8] = 0, 0                                       # rows without labels / without decisions
    D = (P >= 0.4).astype(int)
    want = fbeta_score(Y, D, beta=beta, average=average, zero_division=0)
    assert decision_metric(f"{average}_f{beta}", Y, D) == pytest.approx(want, abs=1e-12)


# ---------------------------------------------------------------- per-class exact sweep

@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("seed", range(20))
def test_fbeta_threshold_matches_brute_force_with_ties(seed, beta):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    y = (rng.random(n) < rng.choice([0.0, 0.05, 0.3, 0.7, 1.0])).astype(int)
    p = np.round(rng.random(n), 1 if seed % 2 else 2)          # ties, many of them on odd seeds
    t, value = best_threshold(y, p, beta)
    brute = max(fbeta_score(y, p >= c, beta=beta, zero_division=0) for c in [*np.unique(p), np.inf])
    assert value == pytest.approx(brute, abs=1e-12)
    assert fbeta_score(y, p >= t, beta=beta, zero_division=0) == pytest.approx(brute, abs=1e-12)


def test_larger_beta_lowers_the_threshold():
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # F1 = 2TP / (true + predicted): top 3 -> 4/6 beats top 7 -> 6/10; F2 = 5TP / (4 true + predicted):
    # top 7 (all 3 positives) -> 15/19 beats top 3 -> 10/15
    assert best_threshold(y, p, 1.0) == (pytest.approx(0.65), pytest.approx(4 / 6))
    assert best_threshold(y, p, 2.0) == (pytest.approx(0.25), pytest.approx(15 / 19))


# ---------------------------------------------------------------- micro / samples coordinate ascent

def assert_coordinatewise_optimal(metric, Y, P, values):
    best = th.threshold_metric(metric, Y, P, MULTILABEL, values)
    for c in range(Y.shape[1]):
        for t in [*np.unique(P[:, c]), np.inf]:                # every decision set of class c
            trial = values.copy()
            trial[c] = t
            assert th.threshold_metric(metric, Y, P, MULTILABEL, trial) <= best + 1e-12, (c, t)
    return best


@pytest.mark.parametrize("beta", [1.0, 2.0])
@pytest.mark.parametrize("average", ["micro", "samples"])
def test_coordinate_ascent_is_coordinatewise_optimal_and_beats_per_class_start(average, beta):
    gains = []
    for seed in range(6):
        Y, P = multilabel_data(seed, ties=seed % 2 == 1)
        metric = f"{average}_f{beta}"
        values = th.fit_thresholds(Y, P, MULTILABEL, metric)
        fitted = assert_coordinatewise_optimal(metric, Y, P, values)
        start = th.threshold_metric(metric, Y, P, MULTILABEL, th.fit_thresholds(Y, P, MULTILABEL, f"macro_f{beta}"))
        assert fitted >= start
        gains.append(fitted - start)
    assert max(gains) > 0.005                                  # the per-class start is not what it returns


def test_samples_ascent_matches_brute_force_over_all_threshold_pairs():
    # two classes, few distinct scores: the whole grid of decision sets can be searched
    Y, P = multilabel_data(3, n=60, n_classes=2, ties=True)
    grid = [[*np.unique(P[:, c]), np.inf] for c in range(2)]
    best = max(th.threshold_metric("samples_f2", Y, P, MULTILABEL, np.array([a, b]))
               for a in grid[0] for b in grid[1])
    fitted = th.threshold_metric("samples_f2", Y, P, MULTILABEL, th.fit_thresholds(Y, P, MULTILABEL, "samples_f2"))
    # only coordinate-wise optimal in general; on this data (as on every 2-class grid we tried) it is global
    assert fitted == pytest.approx(best, abs=1e-12)


# ---------------------------------------------------------------- multi-class macro F-beta biases

@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_macro_fbeta_biases_never_worse_than_argmax_and_coordinatewise_optimal(seed, beta):
    Y, P = multiclass_data(seed, n=120, n_classes=3 + seed)
    if seed == 1:
        P = np.round(P, 1)                                     # many rows share a breakpoint
    metric = f"macro_f{beta}"
    b = th.fit_thresholds(Y, P, MULTICLASS, metric)
    best = th.threshold_metric(metric, Y, P, MULTICLASS, b)
    assert best >= th.threshold_metric(metric, Y, P, MULTICLASS, np.zeros(Y.shape[1]))
    L = np.log(np.clip(P, 1e-7, 1))
    for c in range(Y.shape[1]):                                # every breakpoint of class c's bias, +- a hair
        for d in np.delete(L + b, c, axis=1).max(axis=1) - L[:, c]:
            for trial_value in (d - 1e-9, d + 1e-9):
                trial = b.copy()
                trial[c] = trial_value
                assert th.threshold_metric(metric, Y, P, MULTICLASS, trial) <= best + 1e-12


def test_macro_f2_biases_favour_recall_more_than_f1_biases():
    Y, P = multiclass_data(0, n=400)
    b1 = th.fit_thresholds(Y, P, MULTICLASS, "macro_f1")
    b2 = th.fit_thresholds(Y, P, MULTICLASS, "macro_f2")
    assert not np.allclose(b1, b2)
    f2 = th.threshold_metric("macro_f2", Y, P, MULTICLASS, b2)
    assert f2 >= th.threshold_metric("macro_f2", Y, P, MULTICLASS, b1)

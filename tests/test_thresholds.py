"""Per-class thresholds / biases: exactness, never-worse guarantees, honest nested estimate, CLI."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

import kit.tune.thresholds as th
from kit.data import EMBEDDED_DATA
from kit.tune.fbeta import best_threshold
from kit.metrics import MULTICLASS, MULTILABEL, decide, parse_metric
from kit.runs import file_sha256
from kit.submission import read_thresholds
from kit.tune import main

KEYS = {"run", "task", "metric", "kind", "classes", "values", "before", "after", "nested_before",
        "nested_after", "n_rows"}


def sk_f1(y, d):
    return f1_score(y, d, zero_division=0)


def multilabel_data(seed, n=600, prevalence=(0.02, 0.1, 0.3, 0.6)):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, len(prevalence))) < prevalence).astype(float)
    P = 1 / (1 + np.exp(-(rng.normal(size=Y.shape) + 2.0 * Y - 2.0)))   # positives under-confident
    return Y, P


def multiclass_data(seed, n=800, n_classes=4, shrink_class=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += 1.5
    P = np.exp(logits)
    if shrink_class is not None:
        P[:, shrink_class] *= 0.15                             # a miscalibrated, under-predicted class
    return np.eye(n_classes)[y], P / P.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- best_threshold

def test_best_threshold_known_optimum_and_midpoint():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    t, f1 = best_threshold(y, p)
    assert f1 == pytest.approx(6 / 7)                          # top 4 rows: TP 3, FP 1, FN 0
    assert t == pytest.approx(0.45)                            # midway between 0.6 and the next score 0.3
    assert sk_f1(y, p >= t) == pytest.approx(6 / 7)


@pytest.mark.parametrize("seed", range(60))
def test_best_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    y = (rng.random(n) < rng.choice([0.0, 0.05, 0.3, 0.7, 1.0])).astype(int)
    p = rng.random(n)
    if seed % 2:
        p = np.round(p, 1)                                     # many ties
    t, f1 = best_threshold(y, p)
    brute = max(sk_f1(y, p >= c) for c in [*np.unique(p), np.inf])
    assert f1 == pytest.approx(brute, abs=1e-12)
    assert sk_f1(y, p >= t) == pytest.approx(brute, abs=1e-12)  # the returned threshold reproduces it
    assert t not in set(p) or t == p.min() == 0                # never sits on a training score


def test_best_threshold_ties_cannot_be_split():
    t, f1 = best_threshold(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.1]))
    assert f1 == pytest.approx(2 / 3)                          # both 0.5 rows or nothing
    assert 0.1 < t <= 0.5


def test_best_threshold_all_negative_and_all_positive():
    p = np.array([0.2, 0.9, 0.4])
    t, f1 = best_threshold(np.zeros(3), p)
    assert f1 == 0 and t > p.max()                             # predict nothing
    t, f1 = best_threshold(np.ones(3), p)
    assert f1 == 1 and t <= p.min()
    t, _ = best_threshold(np.zeros(2), np.array([1.0, 0.3]))
    assert t > 1.0                                             # still above a score of exactly 1


def test_best_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        best_threshold(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="lengths"):
        best_threshold(np.array([0, 1]), np.array([0.1]))


# ---------------------------------------------------------------- metrics

@pytest.mark.parametrize("metric", ["macro_f1", "micro_f1", "samples_f1"])
def test_threshold_metric_matches_sklearn_multilabel(metric):
    Y, P = multilabel_data(0, n=200)
    Y[:5] = 0                                                  # rows without labels count as 0 in samples F1
    values = np.array([0.3, 0.5, 0.2, 0.7])
    want = f1_score(Y, P >= values, average=metric.split("_")[0], zero_division=0)
    assert th.threshold_metric(metric, Y, P, MULTILABEL, values) == pytest.approx(want)


def test_threshold_metric_rejects_metric_of_other_task():
    Y, P = multiclass_data(0, n=50)
    with pytest.raises(ValueError, match="micro_f1"):
        th.threshold_metric("micro_f1", Y, P, MULTICLASS, np.zeros(4))


# ---------------------------------------------------------------- multi-label fitting

@pytest.mark.parametrize("seed", range(5))
def test_per_class_macro_f1_beats_default_and_is_per_class_optimal(seed):
    Y, P = multilabel_data(seed)
    values = th.fit_thresholds(Y, P, MULTILABEL, "macro_f1")
    after = th.threshold_metric("macro_f1", Y, P, MULTILABEL, values)
    assert after >= th.threshold_metric("macro_f1", Y, P, MULTILABEL, np.full(4, 0.5))
    assert after == pytest.approx(np.mean([best_threshold(Y[:, c], P[:, c])[1] for c in range(4)]))


# ---------------------------------------------------------------- multi-class biases

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_biases_never_reduce_the_metric(seed, metric):
    Y, P = multiclass_data(seed, n=300, n_classes=int(3 + seed % 3))
    b = th.fit_thresholds(Y, P, MULTICLASS, metric)
    assert (th.threshold_metric(metric, Y, P, MULTICLASS, b)
            >= th.threshold_metric(metric, Y, P, MULTICLASS, np.zeros(Y.shape[1])))


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_biases_fix_a_scaled_down_class(metric):
    Y, P = multiclass_data(0, shrink_class=2)
    b = th.fit_thresholds(Y, P, MULTICLASS, metric)
    before = th.threshold_metric(metric, Y, P, MULTICLASS, np.zeros(4))
    assert th.threshold_metric(metric, Y, P, MULTICLASS, b) > before + 0.03
    assert np.argmax(b - b.mean()) == 2 and b[2] - np.delete(b, 2).max() > 0.5
    recall_2 = decide(P, MULTICLASS, b)[Y[:, 2] == 1, 2].mean()
    assert recall_2 > decide(P, MULTICLASS)[Y[:, 2] == 1, 2].mean() + 0.2


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
@pytest.mark.parametrize("seed", range(3))
def test_biases_are_coordinatewise_optimal_by_brute_force(metric, seed):
    Y, P = multiclass_data(seed, n=120, n_classes=3 + seed, shrink_class=1)
    if seed == 1:
        P = np.round(P, 1)                                     # many rows share a breakpoint
    b = th.fit_thresholds(Y, P, MULTICLASS, metric)
    best = th.threshold_metric(metric, Y, P, MULTICLASS, b)
    L = np.log(np.clip(P, 1e-7, 1))
    for c in range(Y.shape[1]):                                # every breakpoint of class c's bias, +- a hair
        others = np.delete(L + b, c, axis=1).max(axis=1)
        for d in others - L[:, c]:
            for trial_value in (d - 1e-9, d + 1e-9):
                trial = b.copy()
                trial[c] = trial_value
                assert th.threshold_metric(metric, Y, P, MULTICLASS, trial) <= best + 1e-12


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "macro_f2"])
def test_every_bias_candidate_scores_what_decide_gives(metric):
    from kit.tune.biases import _bias_candidates, _top2

    Y, P = multiclass_data(1, n=150, n_classes=4, shrink_class=1)
    P = np.round(P, 1)                                         # many tied breakpoints
    b = np.array([0.1, -0.2, 0.3, 0.0])
    L = np.log(np.clip(P, 1e-7, 1))
    first, v1, second, v2 = _top2(L + b)
    for c in range(4):
        excluded = first == c
        scores, biases = _bias_candidates(Y.argmax(1), L[:, c], np.where(excluded, second, first),
                                          np.where(excluded, v2, v1), c, parse_metric(metric)[1], 4)
        assert len(np.unique(biases)) == len(biases)           # one candidate per distinct decision set
        for score, value in zip(scores, biases):
            trial = b.copy()
            trial[c] = value
            assert score == pytest.approx(th.threshold_metric(metric, Y, P, MULTICLASS, trial), abs=1e-12)


def test_multiclass_labels_must_be_one_hot():
    Y, P = multiclass_data(0, n=20)
    Y[7] = [1, 1, 0, 0]
    with pytest.raises(ValueError, match="row 7"):
        th.fit_thresholds(Y, P, MULTICLASS, "accuracy")


# ---------------------------------------------------------------- nested estimate

def test_nested_estimate_fits_on_other_folds_only(monkeypatch):
    Y, P = multilabel_data(2, n=200)
    folds = np.arange(200) % 4
    seen = []
    real_fit = th.fit_thresholds

    def recording_fit(Yf, Pf, *args, **kwargs):
        seen.append({tuple(row) for row in Pf})
        return real_fit(Yf, Pf, *args, **kwargs)

    monkeypatch.setattr(th, "fit_thresholds", recording_fit)
    th.nested_estimate(Y, P, folds, MULTILABEL, "macro_f1")
    assert len(seen) == 4
    for k, rows in enumerate(seen):
        held = {tuple(row) for row in P[folds == k]}
        assert not rows & held                                 # never saw its held-out fold
        assert rows == {tuple(row) for row in P[folds != k]}   # and saw all the others


def test_nested_estimate_scores_held_out_thresholds():
    # class 0's only positives are in fold 0: fitted without fold 0, the rule predicts nothing there
    n = 100
    folds = np.arange(n) % 5
    Y = np.zeros((n, 2))
    Y[np.flatnonzero(folds == 0)[:4], 0] = 1
    Y[::3, 1] = 1
    P = np.clip(0.3 * Y + np.random.default_rng(0).random((n, 2)) * 0.5, 0, 1)
    in_sample = th.threshold_metric("macro_f1", Y, P, MULTILABEL, th.fit_thresholds(Y, P, MULTILABEL))
    before, nested = th.nested_estimate(Y, P, folds, MULTILABEL, "macro_f1")
    assert before == pytest.approx(th.threshold_metric("macro_f1", Y, P, MULTILABEL, np.full(2, 0.5)))
    assert nested < in_sample
    D_fold0 = decide(P[folds == 0], MULTILABEL, th.fit_thresholds(Y[folds != 0], P[folds != 0], MULTILABEL))
    assert D_fold0[:, 0].sum() == 0


def test_nested_estimate_on_real_bccd_labels_with_a_two_positive_class():
    labels = pd.read_csv(EMBEDDED_DATA / "train.csv")["labels"].fillna("").str.split()
    classes = sorted({c for row in labels for c in row})
    Y = np.array([[c in row for c in classes] for row in labels], dtype=float)
    P = np.clip(0.35 * Y + np.random.default_rng(0).random(Y.shape) * 0.6, 0, 1)
    before, nested = th.nested_estimate(Y, P, np.arange(len(Y)) % 5, MULTILABEL, "macro_f1")
    in_sample = th.threshold_metric("macro_f1", Y, P, MULTILABEL, th.fit_thresholds(Y, P, MULTILABEL))
    assert 0 <= nested <= in_sample and nested > before


# ---------------------------------------------------------------- CLI end to end

def write_run(root: Path, name: str, task: str, seed: int) -> None:
    Y, P = multilabel_data(seed, n=150) if task == MULTILABEL else multiclass_data(seed, n=150, shrink_class=1)
    classes = [f"class_{c}" for c in range(Y.shape[1])]
    ids = [f"img{i:04d}" for i in range(len(Y))]
    folds = pd.DataFrame({"id": ids, "fold": np.arange(len(Y)) % 3})
    folds[classes] = Y.astype(int)
    folds_file = root / "folds" / f"{name}-k3.csv"
    folds_file.parent.mkdir(parents=True, exist_ok=True)
    folds.to_csv(folds_file, index=False)
    run_dir = root / "oof" / name
    run_dir.mkdir(parents=True)
    oof = folds[["id", "fold"]].copy()
    oof[classes] = P
    oof.iloc[::-1].to_csv(run_dir / "oof.csv", index=False)   # row order differs from the folds file
    config = {"kind": "run", "name": name, "task": task, "classes": classes,
              "folds_file": str(folds_file), "folds_sha256": file_sha256(folds_file)}
    (run_dir / "config.json").write_text(json.dumps(config))


def test_cli_tunes_every_finished_run(tmp_path, capsys):
    write_run(tmp_path, "ml_run", MULTILABEL, 0)
    write_run(tmp_path, "mc_run", MULTICLASS, 1)
    (tmp_path / "oof" / "unfinished").mkdir()
    results = main(["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune")])
    assert [r["run"] for r in results] == ["mc_run", "ml_run"]
    for name, kind in [("ml_run", "threshold"), ("mc_run", "bias")]:
        saved = json.loads((tmp_path / "tune" / name / "thresholds.json").read_text())
        assert set(saved) == KEYS
        assert saved["kind"] == kind and saved["metric"] == "macro_f1" and saved["n_rows"] == 150
        assert len(saved["values"]) == len(saved["classes"])
        assert saved["after"] >= saved["before"]
        assert saved["nested_before"] == pytest.approx(saved["before"])
        classes = saved["classes"]                             # what kit.submission reads back
        np.testing.assert_array_equal(read_thresholds(tmp_path / "tune" / name / "thresholds.json",
                                                      saved["task"], classes), saved["values"])
    out = capsys.readouterr().out
    assert "ml_run: macro_f1 " in out and " in-sample, " in out and " nested" in out
    assert not (tmp_path / "tune" / "unfinished").exists()


def test_cli_named_run_other_metric_and_rerun(tmp_path):
    write_run(tmp_path, "mc_run", MULTICLASS, 2)
    args = ["thresholds", "--run", "mc_run", "--metric", "accuracy",
            "--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune")]
    first = main(args)[0]
    assert first["metric"] == "accuracy" and first["after"] > first["before"]
    path = tmp_path / "tune" / "mc_run" / "thresholds.json"
    path.write_text("{}")
    main(args)                                                 # derived file: recomputed on rerun
    assert json.loads(path.read_text())["values"] == first["values"]


def test_cli_rejects_bad_requests_before_writing_anything(tmp_path):
    write_run(tmp_path, "ml_run", MULTILABEL, 0)
    write_run(tmp_path, "mc_run", MULTICLASS, 1)
    dirs = ["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune")]
    with pytest.raises(SystemExit, match="nope"):
        main(["thresholds", "--run", "ml_run", "nope", *dirs])
    with pytest.raises(SystemExit, match="mc_run.*micro_f1.*multiclass"):  # multi-label only
        main(["thresholds", "--metric", "micro_f1", *dirs])
    with pytest.raises(SystemExit, match="no finished runs"):
        main(["--oof-dir", str(tmp_path / "empty")])
    assert not (tmp_path / "tune").exists()


def test_cli_dispatches_hparams_lazily(monkeypatch):
    calls = []
    fake = types.ModuleType("kit.tune.hparams")
    fake.main = lambda argv: calls.append(argv) or "done"
    monkeypatch.setitem(sys.modules, "kit.tune.hparams", fake)
    assert main(["hparams", "--trials", "3"]) == "done"
    assert calls == [["--trials", "3"]]

"""kit.blenders / kit.blend / kit.leaderboard on synthetic run folders written in the documented format."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from blend_fixtures import cli_dirs, make_project, noisy_probabilities, write_folds, write_run, write_thresholds

from kit import blend, submission
from kit.blend import cli as blend_cli
from kit.blend.blenders import HillBlender, RankBlender, StackBlender, WeightsBlender, make_blender, rank_auc
from kit.metrics import MULTICLASS, MULTILABEL, log_loss, mean_auc, score
from kit.runs import load_run

TASKS = (MULTILABEL, MULTICLASS)


def oof_inputs(project, names=("run0", "run1", "run2")):
    runs = [load_run(project["oof_dir"] / n) for n in names]
    return [r.oof_matrix() for r in runs], runs[0].labels(), runs[0].oof["fold"].to_numpy()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["mean", "weights", "hill"])
def test_blend_of_one_run_equals_the_run(tmp_path, task, method):
    p = make_project(tmp_path, task, n_runs=1)
    # --no-thresholds: compare with the run's own submission, which is made at 0.5 / argmax
    blend.main(["--runs", "run0", "--method", method, "--name", "solo", "--no-thresholds", *cli_dirs(p)])
    run, solo = load_run(p["oof_dir"] / "run0"), load_run(p["oof_dir"] / "solo")
    pd.testing.assert_frame_equal(solo.oof, run.oof)
    pd.testing.assert_frame_equal(solo.test, run.test)
    submission.main(["run0", *cli_dirs(p)])
    pd.testing.assert_frame_equal(pd.read_csv(p["submissions_dir"] / "solo.csv"),
                                  pd.read_csv(p["submissions_dir"] / "run0.csv"))


@pytest.mark.parametrize("task", TASKS)
def test_rank_of_one_run_keeps_its_order_on_a_0_1_scale(tmp_path, task):
    P, Y, folds = oof_inputs(make_project(tmp_path, task, n_runs=1), ["run0"])
    rank = RankBlender(task=task).fit(P, Y, folds)
    assert rank.oof_.min() >= 0 and rank.oof_.max() <= 1
    if task == MULTILABEL:  # the ranks are a monotone map of the probabilities, class by class
        assert mean_auc(Y, rank.oof_) == pytest.approx(mean_auc(Y, P[0]))
        assert all((np.diff(rank.oof_[np.argsort(P[0][:, c]), c]) >= 0).all() for c in range(Y.shape[1]))
    # test rows are ranked against the OOF distribution: a test copy of an OOF row gets that row's rank
    assert np.allclose(rank.predict([P[0][:7]]), rank.oof_[:7])


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["weights", "hill", "stack"])
def test_fitted_blend_oof_never_uses_its_own_fold(tmp_path, task, method):
    P, Y, folds = oof_inputs(make_project(tmp_path, task))
    poisoned = Y.copy()
    held = folds == folds[0]
    poisoned[held] = poisoned[held][:, ::-1] if task == MULTICLASS else 1 - poisoned[held]
    clean = make_blender(method, task).fit(P, Y, folds)
    dirty = make_blender(method, task).fit(P, poisoned, folds)
    np.testing.assert_array_equal(clean.oof_[held], dirty.oof_[held])
    if method == "stack":  # the poisoned rows do reach the other folds' models
        assert not np.allclose(clean.oof_[~held], dirty.oof_[~held])
    else:  # each fold's weights are exactly those fitted on the other folds' rows alone
        for k in np.unique(folds):
            rest = folds != k
            alone = make_blender(method, task).fit([Pr[rest] for Pr in P], Y[rest], folds[rest])
            np.testing.assert_allclose(clean.fold_weights_[k], alone.weights_, atol=1e-6)
            np.testing.assert_allclose(clean.oof_[~rest], alone.predict([Pr[~rest] for Pr in P]), atol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_weights_are_non_negative_sum_to_one_and_beat_every_run_in_sample(tmp_path, task):
    P, Y, folds = oof_inputs(make_project(tmp_path, task))
    w = WeightsBlender(task=task).fit(P, Y, folds)
    for weights in [w.weights_, *w.fold_weights_.values()]:
        assert (weights >= 0).all() and weights.sum() == pytest.approx(1)
    assert len(w.fold_weights_) == 4
    blended = log_loss(Y, w.predict(P), task)
    assert all(blended <= log_loss(Y, Pr, task) + 1e-9 for Pr in P)
    assert blended <= log_loss(Y, np.mean(P, axis=0), task) + 1e-9
    assert w.weights_[0] > w.weights_[2]  # the least noisy run weighs more than the noisiest


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("n_bags", [0, 3])
def test_hill_beats_or_equals_its_best_single_run(tmp_path, task, n_bags):
    P, Y, folds = oof_inputs(make_project(tmp_path, task))
    hill = HillBlender(task=task, n_bags=n_bags, seed=1).fit(P, Y, folds)
    metric = "auc" if task == MULTILABEL else "macro_f1"
    assert hill.score_ == pytest.approx(score(metric, Y, hill.predict(P), task))
    assert hill.score_ >= max(score(metric, Y, Pr, task) for Pr in P)
    assert (hill.weights_ >= 0).all() and hill.weights_.sum() == pytest.approx(1)
    if n_bags == 0:
        assert np.allclose(hill.counts_, np.round(hill.counts_)) and hill.counts_.sum() >= 1


def test_stack_coefficients_shape_and_probabilities(tmp_path):
    P, Y, folds = oof_inputs(make_project(tmp_path, MULTICLASS))
    stack = StackBlender(task=MULTICLASS).fit(P, Y, folds)
    assert stack.coef_.shape == (4, 3 * 4)
    assert np.allclose(stack.oof_.sum(axis=1), 1) and np.allclose(stack.predict(P).sum(axis=1), 1)
    P, Y, folds = oof_inputs(make_project(tmp_path / "ml", MULTILABEL))
    assert StackBlender(task=MULTILABEL).fit(P, Y, folds).coef_.shape == (4, 3)


def test_blend_folder_is_a_run_folder_and_can_be_blended_again(tmp_path):
    p = make_project(tmp_path, MULTILABEL)
    blend.main(["--method", "stack", *cli_dirs(p)])  # default: every run
    out = load_run(p["oof_dir"] / "blend-stack")
    assert out.config["kind"] == "blend" and out.config["runs"] == ["run0", "run1", "run2"]
    assert out.config["folds_sha256"] == load_run(p["oof_dir"] / "run0").config["folds_sha256"]
    assert out.config["data"] == load_run(p["oof_dir"] / "run0").config["data"]
    weights = json.loads((p["oof_dir"] / "blend-stack" / "weights.json").read_text())
    assert set(weights["coef"]) == set(p["classes"]) and set(weights["fold_coef"]) == {"0", "1", "2", "3"}
    assert set(weights["coef"]["class_0"]) == {"run0", "run1", "run2"} and "weights" not in weights
    scores = json.loads((p["oof_dir"] / "blend-stack" / "scores.json").read_text())
    assert scores["overall"]["auc"] == pytest.approx(mean_auc(out.labels(), out.oof_matrix()), abs=1e-5)
    assert (p["submissions_dir"] / "blend-stack.csv").exists()
    blend.main(["--method", "weights", *cli_dirs(p)])  # default runs exclude the blend
    assert load_run(p["oof_dir"] / "blend-weights").config["runs"] == ["run0", "run1", "run2"]
    blend.main(["--runs", "blend-stack", "blend-weights", "--method", "mean", "--name", "b2", *cli_dirs(p)])
    assert load_run(p["oof_dir"] / "b2").config["runs"] == ["blend-stack", "blend-weights"]


def test_runs_on_different_folds_fail_naming_them(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=2)
    other = write_folds(tmp_path / "folds" / "other-k4.csv", p["ids"], np.arange(len(p["ids"])) % 3,
                        p["Y"], p["classes"])
    write_run(p["oof_dir"], "elsewhere", task=MULTILABEL, classes=p["classes"], folds_file=other,
              P_oof=noisy_probabilities(p["rng"], p["Y"], MULTILABEL, 1.0), data_root=p["root"])
    named = r"different folds files.*run0: .*synthetic-k4\.csv.*elsewhere: .*other-k4\.csv"
    with pytest.raises(SystemExit, match=named):
        blend.main(["--runs", "run0", "elsewhere", *cli_dirs(p)])
    assert not (p["oof_dir"] / "blend-weights").exists()


def test_runs_with_different_classes_or_test_ids_fail(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=1)
    renamed = pd.read_csv(p["folds_file"]).rename(columns={"class_3": "other"})
    folds = tmp_path / "folds" / "renamed.csv"
    renamed.to_csv(folds, index=False)
    runs = [load_run(p["oof_dir"] / "run0")]
    runs.append(load_run(write_run(p["oof_dir"], "renamed", task=MULTILABEL, classes=list(renamed.columns[2:]),
                                   folds_file=folds, P_oof=runs[0].oof_matrix(), data_root=p["root"])))
    runs[1].config["folds_sha256"] = runs[0].config["folds_sha256"]  # isolate the class check
    with pytest.raises(blend_cli.BlendInputError, match="different classes"):
        blend_cli.check_compatible(runs)
    shifted = write_run(p["oof_dir"], "shifted", task=MULTILABEL, classes=p["classes"],
                        folds_file=p["folds_file"], P_oof=runs[0].oof_matrix(),
                        test_ids=[f"x{i}" for i in range(len(p["test_ids"]))], P_test=runs[0].test_matrix(),
                        data_root=p["root"])
    with pytest.raises(blend_cli.BlendInputError, match="test ids differ"):
        blend_cli.check_compatible([runs[0], load_run(shifted)])


def test_existing_blend_needs_overwrite_and_runs_are_never_overwritten(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=2)
    args = ["--runs", "run0", "run1", "--method", "mean", "--name", "b", *cli_dirs(p)]
    blend.main(args)
    before = (p["oof_dir"] / "b" / "oof.csv").read_text()
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        blend.main(args)
    blend.main([*args[:4], "rank", *args[5:], "--overwrite"])
    assert (p["oof_dir"] / "b" / "oof.csv").read_text() != before
    with pytest.raises(SystemExit, match="one of its input runs"):
        blend.main(["--runs", "run0", "run1", "--name", "run0", "--overwrite", *cli_dirs(p)])
    with pytest.raises(SystemExit, match="other than a blend"):
        blend.main(["--runs", "run1", "--name", "run0", "--overwrite", *cli_dirs(p)])


def test_unknown_blender_parameter_is_a_clear_error(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=2)
    with pytest.raises(SystemExit, match="no parameter"):
        blend.main(["--method", "weights", "--param", "n_bags=3", *cli_dirs(p)])
    blend.main(["--method", "hill", "--param", "n_bags=3", "--param", "bag_fraction=0.5", *cli_dirs(p)])
    assert load_run(p["oof_dir"] / "blend-hill").config["params"]["n_bags"] == 3


def test_leaderboard_lists_runs_and_blends_sorted_with_thresholded_metric(tmp_path):
    p = make_project(tmp_path, MULTILABEL)
    write_thresholds(p["tune_dir"], "run1", MULTILABEL, p["classes"], [0.3] * 4)
    blend.main(["--method", "weights", *cli_dirs(p)])
    table = pd.read_csv(p["submissions_dir"] / "leaderboard.csv")
    assert set(table["name"]) == {"run0", "run1", "run2", "blend-weights"}
    assert list(table["auc"]) == sorted(table["auc"], reverse=True)
    run1 = load_run(p["oof_dir"] / "run1")
    expected = score("macro_f1", run1.labels(), (run1.oof_matrix() >= 0.3).astype(float), MULTILABEL)
    assert table.set_index("name").loc["run1", "thresholded_macro_f1"] == pytest.approx(expected)
    thresholded = table.set_index("name")["thresholded_macro_f1"]
    assert thresholded[["run0", "run2"]].isna().all()  # never tuned
    assert not np.isnan(thresholded["blend-weights"])   # a new blend fits its own thresholds


def test_hill_fast_auc_equals_kit_metrics_auc():
    rng = np.random.default_rng(3)
    Y = (rng.random((200, 5)) < 0.3).astype(float)
    Y[:, 2] = 0  # a class without positives is skipped by both
    P = np.round(rng.random((200, 5)), 2)  # many ties
    assert rank_auc(Y, P) == pytest.approx(mean_auc(Y, P), abs=1e-12)
    assert np.isnan(rank_auc(np.zeros((5, 2)), P[:5, :2]))


@pytest.mark.parametrize("task", TASKS)
def test_new_blend_fits_its_own_thresholds_and_submits_with_them(tmp_path, task):
    p = make_project(tmp_path, task, n_runs=2)
    blend.main(["--runs", "run0", "run1", "--method", "mean", "--name", "b", *cli_dirs(p)])
    fitted = json.loads((p["tune_dir"] / "b" / "thresholds.json").read_text())
    assert fitted["run"] == "b" and fitted["after"] >= fitted["before"]
    sub = pd.read_csv(p["submissions_dir"] / "b.csv", keep_default_na=False)
    plain = tmp_path / "plain"
    submission.main(["b", *cli_dirs(p)[:4], "--submissions-dir", str(plain), "--thresholds",
                     str(p["tune_dir"] / "b" / "thresholds.json")])
    assert sub.equals(pd.read_csv(plain / "b.csv", keep_default_na=False))

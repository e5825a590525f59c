"""F-beta through the CLIs: kit.tune thresholds --metric, the submission applying the tuned rule, the
leaderboard's thresholded columns, kit.blend --threshold-metric and kit.score --metric."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from blend_fixtures import cli_dirs, make_project

from kit import blend, score, submission, tune
from kit.leaderboard import leaderboard
from kit.metrics import MULTICLASS, MULTILABEL, decide
from kit.runs import load_run
from kit.tune.thresholds import fit_thresholds

ROOT = Path(__file__).resolve().parents[1]


def tune_dirs(p):
    return cli_dirs(p)[:4]


def read_thresholds_json(p, name):
    return json.loads((p["tune_dir"] / name / "thresholds.json").read_text())


@pytest.mark.parametrize("task", [MULTILABEL, MULTICLASS])
def test_tune_f2_writes_values_the_submission_applies(tmp_path, task):
    p = make_project(tmp_path, task, n_runs=1)
    tune.main(["thresholds", "--run", "run0", "--metric", "f2", *tune_dirs(p)])
    saved = read_thresholds_json(p, "run0")
    run = load_run(p["oof_dir"] / "run0")
    assert saved["metric"] == "macro_f2"
    np.testing.assert_allclose(saved["values"], fit_thresholds(run.labels(), run.oof_matrix(), task, "macro_f2"))
    assert saved["after"] >= saved["before"]
    submission.main(["run0", *cli_dirs(p)])
    written = pd.read_csv(p["submissions_dir"] / "run0.csv", keep_default_na=False)
    P_test = run.test.set_index("id").loc[written["id"], run.classes].to_numpy()
    tuned, plain = (submission.label_strings(decide(P_test, task, v), run.classes, task)
                    for v in (np.array(saved["values"]), 0.5))
    assert list(written["label"]) == tuned
    assert tuned != plain                                      # the F2 rule changes some test decisions


def test_python_m_kit_tune_runs_the_subpackage(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=1)
    done = subprocess.run([sys.executable, "-m", "kit.tune", "thresholds", "--metric", "samples_F2",
                           *tune_dirs(p)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "run0: samples_f2 " in done.stdout
    assert read_thresholds_json(p, "run0")["metric"] == "samples_f2"


def test_tune_rejects_unknown_or_unsuitable_metrics_before_writing(tmp_path, capsys):
    p = make_project(tmp_path, MULTICLASS, n_runs=1)
    with pytest.raises(SystemExit) as exit_info:
        tune.main(["thresholds", "--metric", "weighted_f1", *tune_dirs(p)])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "unknown decision metric 'weighted_f1'" in err and "samples_fB" in err
    with pytest.raises(SystemExit, match="run0.*samples_f2.*multiclass"):
        tune.main(["thresholds", "--metric", "samples_f2", *tune_dirs(p)])
    assert not p["tune_dir"].exists()


def test_leaderboard_columns_for_fbeta_tuned_runs(tmp_path):
    p = make_project(tmp_path, MULTILABEL)
    tune.main(["thresholds", "--run", "run0", "--metric", "samples_f2", *tune_dirs(p)])
    tune.main(["thresholds", "--run", "run1", "--metric", "f2", *tune_dirs(p)])
    table = leaderboard(p["oof_dir"], p["tune_dir"]).set_index("name")
    for name, metric in (("run0", "samples_f2"), ("run1", "macro_f2")):
        saved = read_thresholds_json(p, name)
        assert table.loc[name, f"thresholded_{metric}"] == pytest.approx(saved["after"])
        assert table.loc[name, f"thresholded_{metric}_nested"] == pytest.approx(saved["nested_after"])
    assert np.isnan(table.loc["run1", "thresholded_samples_f2"]) and np.isnan(table.loc["run2", "thresholded_macro_f2"])


def test_blend_fits_its_thresholds_for_the_threshold_metric(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=2)
    blend.main(["--runs", "run0", "run1", "--method", "mean", "--name", "b", "--threshold-metric", "samples_f2",
                *cli_dirs(p)])
    saved = read_thresholds_json(p, "b")
    b = load_run(p["oof_dir"] / "b")
    assert saved["metric"] == "samples_f2"
    np.testing.assert_allclose(saved["values"], fit_thresholds(b.labels(), b.oof_matrix(), MULTILABEL, "samples_f2"))
    written = pd.read_csv(p["submissions_dir"] / "b.csv", keep_default_na=False)
    P_test = b.test.set_index("id").loc[written["id"], b.classes].to_numpy()
    D = decide(P_test, MULTILABEL, np.array(saved["values"]))
    assert list(written["label"]) == submission.label_strings(D, b.classes, MULTILABEL)


def test_blend_refuses_threshold_metric_conflicts_before_any_work(tmp_path):
    p = make_project(tmp_path, MULTICLASS, n_runs=2)
    base = ["--runs", "run0", "run1", "--method", "mean", "--name", "b", *cli_dirs(p)]
    with pytest.raises(SystemExit, match="cannot be combined"):
        blend.main([*base, "--threshold-metric", "f2", "--no-thresholds"])
    with pytest.raises(SystemExit, match="micro_f1.*multiclass"):
        blend.main([*base, "--threshold-metric", "micro_f1"])
    assert not (p["oof_dir"] / "b").exists() and not p["tune_dir"].exists()


def write_labels(path, rows):
    pd.DataFrame({"id": list(rows), "labels": list(rows.values())}).to_csv(path, index=False)
    return path


def test_score_reports_named_fbeta_metrics_computed_by_hand(tmp_path, capsys):
    solution = write_labels(tmp_path / "solution.csv", {"a": "x y", "b": "y", "c": "z", "d": "x"})
    sub = write_labels(tmp_path / "sub.csv", {"a": "x", "b": "x y z", "c": "", "d": "x"})
    result = score.main([str(sub), "--solution", str(solution), "--metric", "samples_f2", "micro_f0.5"])
    # per row F2 = 5 TP / (4 true + predicted): a 5/9, b 5/7, c 0, d 1
    assert result["samples_f2"] == pytest.approx((5 / 9 + 5 / 7 + 0 + 1) / 4)
    # micro F0.5 = 1.25 TP / (0.25 true + predicted): TP 3, true 5, predicted 5
    assert result["micro_f0.5"] == pytest.approx(1.25 * 3 / (0.25 * 5 + 5))
    assert {"macro_f1", "micro_f1", "samples_f1"} <= set(result)   # the usual output is still there
    out = capsys.readouterr().out
    assert "samples_f2 0." in out and "micro_f0.5 0." in out
    with pytest.raises(SystemExit):
        score.main([str(sub), "--solution", str(solution), "--metric", "f0"])
    assert "samples_fB" in capsys.readouterr().err

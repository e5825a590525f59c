"""kit.report on tiny real runs: every figure is an embedded, decodable, non-blank PNG, the page loads
nothing from the network, and the numbers in its tables are those of scores.json, thresholds.json,
weights.json, the study's summary and the leaderboard (checked against the files, not against the
report's own code)."""
from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pandas as pd
import pytest
from competitions import bccd_subset, digits_competition
from conftest import cv_argv
from html_tables import PNG_PREFIX, parse, records, same
from PIL import Image

from kit import blend, report, tune
from kit.tune.hparams import main as hparams_main
from kit.runs import read_json
from kit.score import score_submission


@pytest.fixture(scope="module")
def project(tmp_path_factory, cache_dir) -> dict:
    """Two seeds of one multi-label config and a multi-class run (tiny, real), thresholds for all, a blend of
    the two seeds, a 2-trial study; then their reports (the blend's and mc's with their test rows scored
    against solution.csv)."""
    from kit.cv import main as cv_main

    out = tmp_path_factory.mktemp("report")
    bccd = bccd_subset(out / "data" / "bccd", n_train=60, n_test=12)
    digits = digits_competition(out / "data" / "digits", n_train=100, n_test=30)
    for data, name, extra in ((bccd, "ml", []), (bccd, "ml-seed7", ["--seed", "7"]), (digits, "mc", [])):
        assert cv_main(cv_argv(data, out, cache_dir, name, *extra)) == 0
    dirs = ["--oof-dir", str(out / "oof"), "--tune-dir", str(out / "tune")]
    tune.main(["thresholds", *dirs])
    for method, name in (("weights", "bl"), ("stack", "stack")):
        blend.main(["--runs", "ml", "ml-seed7", "--method", method, "--name", name, *dirs,
                    "--submissions-dir", str(out / "subs")])
    assert hparams_main(["--model", "test_resnet", "--folds", "2", "--epochs", "1", "--img-size", "32",
                         "--data", str(bccd), "--tune-dir", str(out / "tune"), "--folds-dir", str(out / "folds"),
                         "--cache-dir", str(cache_dir), "--study", "st", "--pruner", "none", "--trials", "2"]) == 0
    to_reports = [*dirs, "--reports-dir", str(out / "reports")]
    common = [*to_reports, "--gallery", "4"]
    assert report.main(["bl", "--solution", str(bccd / "solution.csv"), *common]) == 0
    assert report.main(["mc", "--solution", str(digits / "solution.csv"), *common]) == 0
    assert report.main(["ml", "--study", "st", "--leaderboard", *common]) == 0  # test rows: bl's page covers them
    assert report.main(["stack", *to_reports, "--gallery", "0"]) == 0
    return {"out": out, "oof": out / "oof", "tune": out / "tune", "reports": out / "reports", "bccd": bccd,
            "digits": digits}


EXPECTED_FIGURES = {
    "ml": {"fold-spread", "learning-curves", "oof-roc-pr", "oof-threshold-f1", "oof-cooccurrence",
           "oof-calibration", "oof-worst"},
    "mc": {"fold-spread", "learning-curves", "oof-confusion", "oof-calibration", "oof-worst", "test-confusion",
           "test-calibration", "test-worst"},
    "bl": {"fold-spread", "member-scores", "weights", "error-correlation", "oof-roc-pr", "oof-worst",
           "test-roc-pr", "test-threshold-f1", "test-cooccurrence", "test-calibration", "test-worst"},
    "stack": {"member-scores", "weights", "error-correlation", "oof-roc-pr"},
    "study-st": {"history", "intermediate-values", "importances"},
    "leaderboard": {"leaderboard-bccd-multilabel", "leaderboard-digits-multiclass"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_every_figure_is_an_embedded_non_blank_png_and_the_page_is_offline(project, name):
    folder = project["reports"] / name
    page = parse(folder / "index.html")
    beside = {p.stem: p.read_bytes() for p in folder.glob("*.png")}
    assert EXPECTED_FIGURES[name] <= set(beside)
    assert all(link.startswith(PNG_PREFIX) for link in page.links)  # nothing fetched: opens from disk, offline
    embedded = [base64.b64decode(src[len(PNG_PREFIX):]) for src in page.images]
    assert sorted(embedded) == sorted(beside.values())  # every PNG beside the page is in it, and only those
    for data in embedded:
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.width >= 200 and image.height >= 100
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 5  # not a blank canvas


def check_fold_scores(page: PageParser, scores: dict) -> None:
    rows = {r["fold"]: r for r in records(page, "fold-scores")}
    for fold, values in [*scores["folds"].items(), ("overall (pooled OOF)", scores["overall"])]:
        for metric, value in values.items():
            assert same(rows[fold][metric], value), (fold, metric)
    for metric in scores["overall"]:
        folds = [scores["folds"][k][metric] for k in scores["folds"]]
        assert rows["mean ± std"][metric] == f"{np.mean(folds):.4f} ± {np.std(folds):.4f}"


def check_thresholds(page: PageParser, spec: dict) -> None:
    summary, = records(page, "threshold-summary")
    for key in ("before", "after", "nested_before", "nested_after"):
        assert same(summary[key], spec[key]), key
    values = {r["class"]: r["value"] for r in records(page, "threshold-values")}
    assert all(same(values[c], v) for c, v in zip(spec["classes"], spec["values"]))


def test_multilabel_run_tables_equal_its_files(project):
    oof, page = project["oof"], parse(project["reports"] / "ml" / "index.html")
    scores, spec = read_json(oof / "ml" / "scores.json"), read_json(project["tune"] / "ml" / "thresholds.json")
    check_fold_scores(page, scores)
    check_thresholds(page, spec)
    labels = {r["label"]: r for r in records(page, "oof-labels")}
    assert [r for r in labels if r != "macro"] == spec["classes"]
    for c, value in zip(spec["classes"], spec["values"]):
        assert same(labels[c]["threshold"], value)
    assert same(labels["macro"]["f1_at_0.5"], scores["overall"]["macro_f1"])
    assert same(labels["macro"]["auc"], scores["overall"]["auc"])
    assert same(labels["macro"]["f1_tuned"], spec["after"])  # tuned for macro F1: the mean of the label F1s
    # the best epoch of each fold is the one with the best validation AUC in summary.csv
    summary = pd.read_csv(oof / "ml" / "summary.csv")
    for row in records(page, "best-epochs"):
        fold = summary[summary["fold"] == int(row["fold"])]
        assert int(row["best_epoch"]) == int(fold.loc[fold["valid_metric"].idxmax(), "epoch"])
    # the two seeds of the config, with their own scores, and their mean
    seeds = {r["run"]: r for r in records(page, "seeds")}
    other = read_json(oof / "ml-seed7" / "scores.json")["overall"]
    assert seeds["ml"]["seed"] == "42" and seeds["ml-seed7"]["seed"] == "7"
    for metric in scores["overall"]:
        assert same(seeds["ml-seed7"][metric], other[metric])
        assert same(seeds["mean"][metric], (scores["overall"][metric] + other[metric]) / 2)
    worst = records(page, "oof-worst")
    assert len(worst) == 4 and [float(r["loss"]) for r in worst] == sorted((float(r["loss"]) for r in worst),
                                                                           reverse=True)


def test_multiclass_run_tables_equal_its_files(project):
    page = parse(project["reports"] / "mc" / "index.html")
    scores = read_json(project["oof"] / "mc" / "scores.json")
    spec = read_json(project["tune"] / "mc" / "thresholds.json")
    check_fold_scores(page, scores)
    check_thresholds(page, spec)
    report_rows = {r["class"]: r for r in records(page, "oof-classification-report")}
    assert same(report_rows["accuracy"]["f1-score"], scores["overall"]["accuracy"])
    assert same(report_rows["macro avg"]["f1-score"], scores["overall"]["macro_f1"])
    assert sum(int(report_rows[c]["support"]) for c in spec["classes"]) == 100
    tuned = {r["class"]: r for r in records(page, "oof-classification-report-tuned")}
    assert same(tuned["macro avg"]["f1-score"], spec["after"])  # the biases were fitted for macro F1
    for row in records(page, "oof-top-confusions"):
        assert row["true"] != row["predicted"] and 0 < int(row["count"]) <= int(report_rows[row["true"]]["support"])
    # test rows scored by kit.score's metrics against solution.csv
    test, = [r for r in records(page, "test-scores") if r["decisions"] == "0.5 / argmax"]
    solution = pd.read_csv(project["digits"] / "solution.csv", dtype=str)
    probs = pd.read_csv(project["oof"] / "mc" / "test.csv", dtype={"id": str}).set_index("id")
    predicted = probs.loc[solution["id"]].idxmax(axis=1).to_numpy()
    assert same(test["accuracy"], np.mean(predicted == solution["label"].to_numpy()))


def test_blend_tables_equal_its_files_and_the_submission_score(project):
    oof, page = project["oof"], parse(project["reports"] / "bl" / "index.html")
    scores, weights = read_json(oof / "bl" / "scores.json"), read_json(oof / "bl" / "weights.json")
    check_fold_scores(page, scores)
    check_thresholds(page, read_json(project["tune"] / "bl" / "thresholds.json"))
    members = {r["name"]: r for r in records(page, "member-scores")}
    for name, values in [*scores["runs"].items(), ("bl", scores["overall"])]:
        assert all(same(members[name][m], v) for m, v in values.items())
    table = {r["run"]: r for r in records(page, "weights")}
    for run, value in weights["weights"].items():
        assert same(table[run]["weight"], value)
        assert all(same(table[run][f"fold {k}"], w[run]) for k, w in weights["fold_weights"].items())
    # diversity: the correlation of the members' residuals, computed here from their files
    folds = pd.read_csv(read_json(oof / "ml" / "config.json")["folds_file"], dtype={"id": str}).set_index("id")
    classes = read_json(oof / "ml" / "config.json")["classes"]
    residuals = [(pd.read_csv(oof / r / "oof.csv", dtype={"id": str}).set_index("id").loc[folds.index, classes]
                  - folds[classes]).to_numpy().ravel() for r in ("ml", "ml-seed7")]
    corr = {r["run"]: r for r in records(page, "error-correlation")}
    assert same(corr["ml"]["ml-seed7"], np.corrcoef(residuals)[0, 1])
    # the tuned test decisions are those of the blend's submission, scored by kit.score
    tuned, = [r for r in records(page, "test-scores") if r["decisions"] == "tuned"]
    expected = score_submission(project["out"] / "subs" / "bl.csv", project["bccd"] / "solution.csv")
    assert all(same(tuned[m], expected[m]) for m in ("macro_f1", "micro_f1", "samples_f1"))


def test_stacker_coefficients_equal_its_weights_file(project):
    page = parse(project["reports"] / "stack" / "index.html")
    weights = read_json(project["oof"] / "stack" / "weights.json")
    rows = {r["class"]: r for r in records(page, "weights")}
    assert set(rows) == set(weights["coef"])
    for label, coefs in weights["coef"].items():
        assert all(same(rows[label][member], value) for member, value in coefs.items())
        assert same(rows[label]["intercept"], weights["intercept"][label])
    assert "oof-worst" not in page.tables  # --gallery 0


def test_study_tables_equal_its_summary(project):
    page = parse(project["reports"] / "study-st" / "index.html")
    summary = read_json(project["tune"] / "st-summary.json")
    row, = records(page, "study-summary")
    assert int(row["n_trials"]) == summary["n_trials"] == 2 and int(row["best_trial"]) == summary["best_trial"]
    assert same(row["best_value"], summary["best_value"]) and same(row["default_value"], summary["default_value"])
    compare = {r["key"]: r for r in records(page, "best-vs-default")}
    assert same(compare["objective value"]["best"], summary["best_value"])
    for key, value in summary["params"].items():
        cell = compare[key]["best"]
        assert same(cell, value) if isinstance(value, float) else cell == ("n/a" if value is None else str(value))
    assert records(page, "importances")  # one row per searched parameter


def test_leaderboard_chart_table_equals_kit_leaderboard(project):
    page = parse(project["reports"] / "leaderboard" / "index.html")
    board = pd.read_csv(project["out"] / "subs" / "leaderboard.csv")  # written by kit.blend, same files
    shown = {r["name"]: r for t in ("leaderboard-bccd-multilabel", "leaderboard-digits-multiclass")
             for r in records(page, t)}
    assert set(shown) == set(board["name"]) == {"ml", "ml-seed7", "mc", "bl", "stack"}
    for row in board.to_dict("records"):
        for metric in ("macro_f1", "log_loss", "thresholded_macro_f1", "thresholded_macro_f1_nested"):
            assert same(shown[row["name"]][metric], row[metric]), (row["name"], metric)


def test_a_rewritten_report_drops_what_it_no_longer_shows(project, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(project["reports"] / "mc", reports / "mc")
    assert (reports / "mc" / "test-confusion.png").exists()
    # no --solution and no thresholds this time: no test section, no tuned tables
    assert report.main(["mc", "--oof-dir", str(project["oof"]), "--tune-dir", str(tmp_path / "empty"),
                        "--reports-dir", str(reports), "--gallery", "2"]) == 0
    assert not list((reports / "mc").glob("test-*.png"))
    tables = parse(reports / "mc" / "index.html").tables
    assert "test-scores" not in tables and "threshold-summary" not in tables
    assert "oof-classification-report-tuned" not in tables and len(tables["oof-worst"]) == 1 + 2


@pytest.mark.parametrize("case", ["unknown run", "solution of other data", "missing solution", "unknown study"])
def test_bad_input_fails_before_any_report_is_written(project, tmp_path, capsys, case):
    reports = tmp_path / "reports"
    dirs = ["--oof-dir", str(project["oof"]), "--tune-dir", str(project["tune"]), "--reports-dir", str(reports)]
    argv, named = {
        "unknown run": (["ml", "nope"], str(project["oof"] / "nope")),
        "solution of other data": (["ml", "mc", "--solution", str(project["bccd"] / "solution.csv")],
                                   str(project["bccd"] / "solution.csv")),
        "missing solution": (["ml", "--solution", str(tmp_path / "none.csv")], str(tmp_path / "none.csv")),
        "unknown study": (["ml", "--study", "nope"], "nope"),
    }[case]
    assert report.main([*argv, *dirs]) == 2
    assert named in capsys.readouterr().err
    assert not reports.exists()  # ml is valid, but nothing was drawn before the bad input was found

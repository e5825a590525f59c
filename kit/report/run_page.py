"""The report of one run or blend: `<reports_dir>/<name>/index.html` plus its PNGs.

Sections: OOF scores per fold and their spread; seeds of the same config; learning curves; for a blend its
weights, member diversity and member vs blend scores; thresholds; per-class diagnostics, calibration and
the worst predictions on the OOF rows, and again on the test rows when a solution is given."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.cache import load_resized
from kit.metrics import DEFAULT_METRIC, GREATER_IS_BETTER, MULTILABEL, decide
from kit.report import blends, curves, mistakes, multiclass, multilabel
from kit.report.inputs import ReportInputs
from kit.report.page import Page
from kit.report.plots import styled
from kit.score import competition_scores

THUMBNAIL = 96


def decisions(inputs: ReportInputs, P: np.ndarray) -> np.ndarray:
    """0/1 decisions with the tuned thresholds / biases when the run has them, else at 0.5 / argmax."""
    return decide(P, inputs.run.task, 0.5 if inputs.values is None else inputs.values)


def decided_by(inputs: ReportInputs) -> str:
    return "tuned thresholds" if inputs.values is not None else "the default rule"


def add_scores(page: Page, inputs: ReportInputs) -> None:
    page.section("OOF scores per fold")
    page.table(curves.fold_table(inputs.scores), "fold-scores",
               "scores.json: each fold's held-out rows, mean ± std over folds, and all OOF rows pooled")
    page.figure(curves.fold_spread_figure(inputs.scores), "fold-spread")
    if len(inputs.seeds) > 1:
        page.section("Seeds of this config")
        page.table(curves.seed_table(inputs.seeds), "seeds",
                   "pooled OOF scores of the runs that differ from this one only in seed; mean and std (ddof 0)")


def add_learning_curves(page: Page, inputs: ReportInputs) -> None:
    train = inputs.run.config["train"]
    metric = train.get("metric") or DEFAULT_METRIC[inputs.run.task]
    best = curves.best_epochs(inputs.summary, GREATER_IS_BETTER[metric])
    page.section("Learning curves")
    page.figure(curves.learning_curves_figure(inputs.summary, best, metric), "learning-curves",
                f"summary.csv per fold; ★ the epoch with the best validation {metric} (the weights kept)")
    page.table(best, "best-epochs")


def add_blend(page: Page, inputs: ReportInputs) -> None:
    page.section("Blend: members and what it learned")
    page.note(f"method {inputs.run.config.get('method')} over {', '.join(inputs.run.config['runs'])}")
    scores = blends.member_scores(inputs.scores, inputs.run.name)
    page.table(scores, "member-scores", "pooled OOF scores of each member and of the blend (its own honest OOF)")
    page.figure(blends.member_scores_figure(scores), "member-scores")
    weights = blends.weights_table(inputs.weights)
    page.table(weights, "weights", "weights.json")
    page.figure(blends.weights_figure(weights), "weights")
    corr = blends.error_correlation(inputs.members)
    page.table(corr, "error-correlation", "correlation of the members' OOF residuals (lower = more diverse)")
    page.figure(blends.correlation_figure(corr), "error-correlation")


def add_thresholds(page: Page, inputs: ReportInputs) -> None:
    spec = inputs.thresholds
    page.section("Tuned thresholds" if spec["kind"] == "threshold" else "Tuned class biases")
    keys = ["metric", "kind", "before", "after", "nested_before", "nested_after"]
    page.table(pd.DataFrame([{k: spec.get(k) for k in keys}]), "threshold-summary",
               "thresholds.json: the metric at the default rule, with the fitted values in-sample, and nested")
    page.table(pd.DataFrame({"class": spec["classes"], "value": spec["values"]}), "threshold-values")


def add_diagnostics(page: Page, Y: np.ndarray, P: np.ndarray, inputs: ReportInputs, where: str) -> None:
    """Per-class tables and figures, then calibration, for the rows of `where` ("oof" or "test")."""
    task, classes, values = inputs.run.task, inputs.run.classes, inputs.values
    if task == MULTILABEL:
        page.table(multilabel.label_table(Y, P, classes, values), f"{where}-labels",
                   "per label: ROC AUC, average precision, F1 at 0.5 and at the tuned threshold; macro mean last")
        page.figure(multilabel.roc_pr_figure(Y, P, classes, where), f"{where}-roc-pr")
        page.figure(multilabel.threshold_f1_figure(Y, P, classes, values), f"{where}-threshold-f1",
                    "F1 against the threshold (predict when p >= t); dotted 0.5, dashed the tuned threshold")
        page.figure(multilabel.cooccurrence_figure(Y, decisions(inputs, P), classes, decided_by(inputs)),
                    f"{where}-cooccurrence")
    else:
        y, d = Y.argmax(1), P.argmax(1)
        page.figure(multiclass.confusion_figure(y, d, classes, where), f"{where}-confusion")
        page.table(multiclass.report_table(y, d, classes), f"{where}-classification-report",
                   "scikit-learn's classification report at argmax")
        if values is not None:
            page.table(multiclass.report_table(y, decisions(inputs, P).argmax(1), classes),
                       f"{where}-classification-report-tuned", "the same with the tuned class biases")
        page.table(multiclass.top_confusions(y, d, classes), f"{where}-top-confusions", "most frequent confusions")
    page.figure(mistakes.calibration_figure(Y, P, task, where), f"{where}-calibration")


def add_gallery(page: Page, inputs: ReportInputs, ids, Y: np.ndarray, P: np.ndarray, where: str, n: int) -> None:
    if n <= 0:
        return
    worst = mistakes.worst_rows(ids, Y, P, decisions(inputs, P), inputs.run.task, inputs.run.classes, n)
    page.section(f"Worst {where} predictions (highest loss)")
    if inputs.image_error:
        page.note(inputs.image_error)
    else:
        thumbs = [load_resized(inputs.image_paths[str(i)], THUMBNAIL) for i in worst["id"]]
        page.figure(mistakes.gallery_figure(thumbs, worst), f"{where}-worst",
                    f"true / predicted labels (by {decided_by(inputs)})", photos=True)
    page.table(worst, f"{where}-worst")


def add_test(page: Page, inputs: ReportInputs, gallery: int) -> None:
    run, Y = inputs.run, inputs.test_truth
    P = run.test_matrix()
    page.section(f"Test rows scored against {inputs.solution}")
    rows = [{"decisions": "0.5 / argmax", **competition_scores(Y, P, run.task, has_probabilities=True)}]
    if inputs.values is not None:
        D = decisions(inputs, P).astype(np.float64)
        rows.append({"decisions": "tuned", **competition_scores(Y, D, run.task, has_probabilities=False)})
    page.table(pd.DataFrame(rows), "test-scores", "kit.score's metrics on test.csv")
    add_diagnostics(page, Y, P, inputs, "test")
    add_gallery(page, inputs, run.test["id"].to_numpy(), Y, P, "test", gallery)


@styled
def write_run_report(inputs: ReportInputs, reports_dir: str | Path, gallery: int = 16) -> Path:
    """Draw the report of `inputs` (see `kit.report.inputs.load_inputs`); returns its index.html."""
    run = inputs.run
    page = Page(f"kit report: {run.config.get('kind', 'run')} {run.name}", Path(reports_dir) / run.name)
    data = run.config.get("data", {})
    page.note(f"{run.task}, {len(run.oof)} OOF rows, {run.oof['fold'].nunique()} folds, classes "
              f"{', '.join(run.classes)}; data {data.get('root')}; from {run.path}")
    add_scores(page, inputs)
    if inputs.summary is not None and "train" in run.config:
        add_learning_curves(page, inputs)
    if run.config.get("kind") == "blend":
        add_blend(page, inputs)
    if inputs.thresholds is not None:
        add_thresholds(page, inputs)
    page.section("OOF diagnostics")
    Y, P = run.labels(), run.oof_matrix()
    add_diagnostics(page, Y, P, inputs, "oof")
    add_gallery(page, inputs, run.oof["id"].to_numpy(), Y, P, "oof", gallery)
    if inputs.test_truth is not None:
        add_test(page, inputs, gallery)
    if "train" in run.config:
        page.section("Training config")
        page.table(pd.DataFrame({"key": list(run.config["train"]),
                                 "value": [str(v) for v in run.config["train"].values()]}), "config")
    return page.write()

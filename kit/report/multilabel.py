"""Multi-label diagnostics: per-label ROC and PR curves, F1 at 0.5 and at the tuned thresholds, F1 against
the threshold, and how often labels occur together in truth vs in the decisions."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (PrecisionRecallDisplay, RocCurveDisplay, average_precision_score, f1_score,
                             precision_recall_curve, roc_auc_score)

from kit.report.plots import matrix_panel, panel_grid, subplots


def has_both(y: np.ndarray) -> bool:
    """ROC AUC and the curves need a positive and a negative row."""
    return 0 < y.sum() < len(y)


def label_table(Y: np.ndarray, P: np.ndarray, classes: list[str], thresholds: np.ndarray | None) -> pd.DataFrame:
    """Per label: positives, ROC AUC, average precision, F1 at 0.5 and (with tuned thresholds) the threshold
    and F1 there; the last row is the macro mean (AUC over the labels that have both values, as kit does)."""
    rows = []
    for c, name in enumerate(classes):
        y, p = Y[:, c], P[:, c]
        row = {"label": name, "positives": int(y.sum()),
               "auc": roc_auc_score(y, p) if has_both(y) else np.nan,
               "ap": average_precision_score(y, p) if y.any() else np.nan,
               "f1_at_0.5": f1_score(y, p >= 0.5, zero_division=0)}
        if thresholds is not None:
            row["threshold"] = float(thresholds[c])
            row["f1_tuned"] = f1_score(y, p >= thresholds[c], zero_division=0)
        rows.append(row)
    table = pd.DataFrame(rows)
    macro = {"label": "macro", "positives": "", **table.drop(columns=["label", "positives"]).mean()}
    if thresholds is not None:
        macro["threshold"] = np.nan
    return pd.concat([table, pd.DataFrame([macro])], ignore_index=True)


def roc_pr_figure(Y: np.ndarray, P: np.ndarray, classes: list[str], where: str):
    """scikit-learn's ROC and precision-recall displays, one curve per label (AUC / AP in the legend)."""
    fig, (roc, pr) = subplots(1, 2, width=4.2, height=3.6)
    for c, name in enumerate(classes):
        if has_both(Y[:, c]):
            RocCurveDisplay.from_predictions(Y[:, c], P[:, c], name=name, ax=roc)
            PrecisionRecallDisplay.from_predictions(Y[:, c], P[:, c], name=name, ax=pr)
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc.set_title(f"ROC per label ({where})")
    pr.set_title(f"precision-recall per label ({where})")
    for ax in (roc, pr):
        ax.legend(fontsize=6)
    return fig


def threshold_f1_figure(Y: np.ndarray, P: np.ndarray, classes: list[str], thresholds: np.ndarray | None):
    """F1 of each label as its threshold moves (predict when p >= t), with 0.5 and the tuned value marked."""
    shown = [c for c in range(len(classes)) if Y[:, c].any()]
    fig, axes = panel_grid(len(shown))
    for ax, c in zip(axes, shown):
        precision, recall, cuts = precision_recall_curve(Y[:, c], P[:, c])
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                       where=precision + recall > 0)
        # F1 holds from one score to the next: everything is predicted below the lowest, nothing above the top
        ax.plot([0, *cuts, 1], [f1[0], *f1[:-1], 0], drawstyle="steps-pre")
        ax.axvline(0.5, color="grey", linestyle=":", label="0.5")
        if thresholds is not None:
            ax.axvline(thresholds[c], color="tab:red", linestyle="--", label="tuned")
        ax.set(title=classes[c], xlim=(0, 1), ylim=(0, 1.02), xlabel="threshold", ylabel="F1")
    if len(shown):
        axes[0].legend()
    return fig


def cooccurrence_figure(Y: np.ndarray, D: np.ndarray, classes: list[str], decided_by: str):
    """How many rows hold each pair of labels (diagonal: each label alone counted), truth vs decisions."""
    fig, (true_ax, pred_ax) = subplots(1, 2, width=4.0, height=3.8)
    Y, D = Y.astype(np.int64), D.astype(np.int64)
    matrix_panel(true_ax, Y.T @ Y, classes, "label co-occurrence (truth)", "d", "label", "label")
    matrix_panel(pred_ax, D.T @ D, classes, f"predicted co-occurrence ({decided_by})", "d", "label", "label",
                 cmap="Oranges")
    return fig

"""Where a model is wrong: the reliability (calibration) diagram with the log loss, and the rows with the
highest loss — a gallery of their images with true and predicted labels, the first thing to look at."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from sklearn.calibration import CalibrationDisplay

from kit.metrics import EPS, MULTICLASS, log_loss
from kit.report.plots import panel_grid, subplots


def row_losses(Y: np.ndarray, P: np.ndarray, task: str) -> np.ndarray:
    """Each row's share of kit's log loss (their mean is `kit.metrics.log_loss`): -log p(true class) for
    multi-class, the mean binary cross-entropy over labels for multi-label."""
    P = np.clip(P, EPS, 1 - EPS)
    if task == MULTICLASS:
        return -np.sum(Y * np.log(P), axis=1)
    return -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P), axis=1)


def calibration_figure(Y: np.ndarray, P: np.ndarray, task: str, where: str, n_bins: int = 10):
    """scikit-learn's reliability diagram: multi-class on the top class's probability (is a 0.8 right 80% of
    the time?), multi-label over every (row, label) probability; the histogram shows where they lie."""
    if task == MULTICLASS:
        y, p, what = (Y.argmax(1) == P.argmax(1)).astype(int), P.max(1), "top-class confidence"
    else:
        y, p, what = Y.ravel().astype(int), P.ravel(), "every label's probability"
    fig, (curve, hist) = subplots(1, 2, width=3.4, height=3.0)
    CalibrationDisplay.from_predictions(y, p, n_bins=n_bins, strategy="uniform", ax=curve, name=where)
    curve.set_title(f"reliability ({what})\nlog loss {log_loss(Y, P, task):.4f}")
    hist.hist(p, bins=n_bins, range=(0, 1), color="tab:blue", alpha=0.7)
    hist.set(title=f"predicted probabilities ({where})", xlabel="probability", ylabel="count")
    return fig


def label_names(row: np.ndarray, classes: list[str], task: str) -> str:
    if task == MULTICLASS:
        return classes[int(np.argmax(row))]
    return " ".join(c for c, v in zip(classes, row) if v) or "(none)"


def worst_rows(ids, Y: np.ndarray, P: np.ndarray, D: np.ndarray, task: str, classes: list[str],
               n: int) -> pd.DataFrame:
    """The `n` rows with the highest loss, worst first: id, loss, true and predicted labels."""
    losses = row_losses(Y, P, task)
    order = np.argsort(-losses, kind="stable")[:n]
    return pd.DataFrame({"id": np.asarray(ids)[order], "loss": losses[order],
                         "true": [label_names(Y[r], classes, task) for r in order],
                         "predicted": [label_names(D[r], classes, task) for r in order]})


def gallery_figure(thumbnails: list[np.ndarray], worst: pd.DataFrame, ncols: int = 4):
    """The images of `worst` in a grid, each titled with its id, loss, true and predicted labels."""
    fig, axes = panel_grid(len(thumbnails), ncols=ncols, width=2.0, height=2.8)
    for ax, image, row in zip(axes, thumbnails, worst.itertuples()):
        ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{row.id}  loss {row.loss:.2f}", fontsize=7)
        labels = textwrap.fill(f"true: {row.true}", 36) + "\n" + textwrap.fill(f"pred: {row.predicted}", 36)
        ax.set_xlabel(labels, fontsize=6, color="tab:red" if row.true != row.predicted else "black")
    return fig

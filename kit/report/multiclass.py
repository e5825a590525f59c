"""Multi-class diagnostics: confusion matrices, scikit-learn's classification report, top confusions."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, classification_report, confusion_matrix

from kit.report.plots import subplots


def confusion_figure(y: np.ndarray, d: np.ndarray, classes: list[str], where: str):
    """Counts and row-normalised (recall per true class) confusion matrices, scikit-learn's display."""
    fig, axes = subplots(1, 2, width=4.4, height=4.0)
    labels = np.arange(len(classes))
    for ax, normalize, fmt, title in ((axes[0], None, "d", "counts"), (axes[1], "true", ".2f", "row-normalised")):
        ConfusionMatrixDisplay.from_predictions(y, d, labels=labels, display_labels=classes, normalize=normalize,
                                                ax=ax, colorbar=False, values_format=fmt, cmap="Blues",
                                                include_values=len(classes) <= 20, xticks_rotation="vertical")
        ax.set_title(f"confusion matrix, {title} ({where})")
    return fig


def report_table(y: np.ndarray, d: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """scikit-learn's classification report: precision, recall, F1 and support per class, then accuracy and
    the macro / weighted averages."""
    report = classification_report(y, d, labels=np.arange(len(classes)), target_names=classes,
                                   output_dict=True, zero_division=0)
    rows = []
    for name, values in report.items():
        if name == "accuracy":
            rows.append({"class": "accuracy", "precision": np.nan, "recall": np.nan, "f1-score": values,
                         "support": len(y)})
        else:
            rows.append({"class": name, **values, "support": int(values["support"])})
    return pd.DataFrame(rows)


def top_confusions(y: np.ndarray, d: np.ndarray, classes: list[str], n: int = 10) -> pd.DataFrame:
    """The `n` most frequent (true, predicted) pairs with true != predicted, with the share of the true class."""
    counts = confusion_matrix(y, d, labels=np.arange(len(classes)))
    np.fill_diagonal(counts, 0)
    order = np.argsort(counts, axis=None, kind="stable")[::-1][:n]
    rows = []
    for t, p in zip(*np.unravel_index(order, counts.shape)):
        if counts[t, p] == 0:
            break
        rows.append({"true": classes[t], "predicted": classes[p], "count": int(counts[t, p]),
                     "share_of_true": counts[t, p] / max(1, int((y == t).sum()))})
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true"])

"""Matplotlib set-up shared by every report figure: the Agg backend (no display needed), small figures at
100 dpi, and the few layouts several figures use."""
from __future__ import annotations

import functools
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: works on a headless machine and never opens a window

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

DPI = 100
STYLE = {"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7}


def styled(write):
    """Run a report writer with the report's small fonts, leaving the caller's matplotlib settings as they
    were (kit may run inside a notebook)."""
    @functools.wraps(write)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return write(*args, **kwargs)
    return wrapper


def subplots(nrows: int = 1, ncols: int = 1, width: float = 4.0, height: float = 3.2):
    """(figure, flat array of axes); width and height are per panel, in inches."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             layout="constrained")
    return fig, axes.ravel()


def panel_grid(n: int, ncols: int = 4, width: float = 2.4, height: float = 2.0):
    """`n` small panels in rows of `ncols`; panels beyond `n` are hidden."""
    ncols = max(1, min(ncols, n))
    fig, axes = subplots(int(np.ceil(n / ncols)), ncols, width, height)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def matrix_panel(ax, matrix: np.ndarray, labels: list[str], title: str, values_format: str,
                 xlabel: str, ylabel: str, cmap: str = "Blues", **im_kw) -> None:
    """A square matrix drawn as scikit-learn's confusion-matrix display (cells annotated while readable)."""
    display = ConfusionMatrixDisplay(np.asarray(matrix), display_labels=labels)
    display.plot(ax=ax, cmap=cmap, colorbar=False, values_format=values_format,
                 include_values=len(labels) <= 20, xticks_rotation="vertical", im_kw=im_kw or None)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)


def metric_bars(table, label_col: str, metrics: list[str], width: float = 2.6):
    """One horizontal bar panel per metric, a bar per row of `table` (read top to bottom)."""
    fig, axes = subplots(1, len(metrics), width=width, height=1.2 + 0.3 * len(table))
    for ax, metric in zip(axes, metrics):
        ax.barh(table[label_col].astype(str), table[metric].astype(float), color="tab:blue")
        ax.invert_yaxis()
        ax.set_title(textwrap.fill(metric.replace("_", " "), 22))
        ax.bar_label(ax.containers[0], fmt="%.3f", fontsize=6, padding=2)
        ax.margins(x=0.25)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    return fig


def close(fig) -> None:
    plt.close(fig)

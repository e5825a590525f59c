"""report.html of an audit: one self-contained page (every thumbnail grid embedded as a base64 PNG, via
kit.report's Page) with the summary, the duplicate pairs side by side, the outliers, the shift and the
label issues. Tables show the first rows of the CSVs written beside it."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from kit.audit.inputs import AuditData
from kit.report.page import Page
from kit.report.plots import panel_grid, styled, subplots

SHOWN = 24  # images or pairs per gallery


def gallery(images: list[np.ndarray], titles: list[str], ncols: int = 6, width: float = 1.9,
            height: float | None = None):
    fig, axes = panel_grid(len(images), ncols=ncols, width=width, height=height or width + 0.5)
    for ax, image, title in zip(axes, images, titles):
        ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(textwrap.fill(title, 30), fontsize=6)
    return fig


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    gap = np.full((a.shape[0], max(2, a.shape[1] // 16), 3), 255, np.uint8)
    return np.hstack([a, gap, b])


def add_duplicates(page: Page, data: AuditData, pairs: pd.DataFrame, row_of: dict) -> None:
    page.section("Duplicates")
    page.note("exact: same decoded pixels; phash: perceptual hash within the Hamming limit (distance = bits/64); "
              "embedding: cosine of the run's centred features (distance = 1 - cosine). labels_agree is "
              "False for train pairs whose labels conflict.")
    if not len(pairs):
        page.note("no duplicate pairs found")
        return
    shown = pairs.head(SHOWN)
    images = [side_by_side(data.rgb(row_of[(r.id_a, r.split_a)]), data.rgb(row_of[(r.id_b, r.split_b)]))
              for r in shown.itertuples()]
    titles = [f"{r.split_a}:{r.id_a} | {r.split_b}:{r.id_b} {r.kind} {r.distance:.3f}"
              + (" LABELS DIFFER" if r.labels_agree is False else "") for r in shown.itertuples()]
    page.figure(gallery(images, titles, ncols=4, width=2.8, height=2.0), "duplicates", f"the first {len(shown)} pairs",
                photos=True)
    page.table(pairs.head(100), "duplicate-pairs", "duplicates.csv (first 100 rows)")


def add_outliers(page: Page, data: AuditData, outliers: pd.DataFrame) -> None:
    page.section("Outliers")
    page.note("isolation forest on the image statistics and embeddings; flagged = score more than the limit "
              "of robust standard deviations above the median")
    top = outliers.head(SHOWN)
    rows = [int(r) for r in top["row"]]
    titles = [f"{s}:{i} z {z:.1f}" + (" FLAGGED" if o else "") for i, s, z, o in
              zip(top["id"], top["split"], top["z"], top["outlier"])]
    page.figure(gallery([data.rgb(r) for r in rows], titles), "outliers", "the most unusual images, by score",
                photos=True)
    page.table(top.drop(columns="row"), "outlier-rows", "outliers.csv (first rows)")


def add_shift(page: Page, data: AuditData, auc: float, test_like: pd.DataFrame, per_feature: pd.DataFrame,
              p_test: np.ndarray, is_test: np.ndarray) -> None:
    page.section("Shift between train and test")
    page.note(f"adversarial validation: out-of-fold ROC AUC of a classifier telling test from train = {auc:.4f} "
              f"(0.5: no detectable shift)")
    fig, (ax,) = subplots(1, 1, width=4.5, height=2.6)
    ax.hist([p_test[~is_test], p_test[is_test]], bins=20, range=(0, 1), label=["train", "test"], density=True)
    ax.set(title="out-of-fold probability of being a test image", xlabel="p(test)")
    ax.legend()
    page.figure(fig, "shift-probabilities")
    page.table(per_feature, "feature-shift", "per image statistic: Kolmogorov-Smirnov statistic of train vs test")
    top = test_like.head(SHOWN)
    page.figure(gallery([data.rgb(int(r)) for r in top["row"]], [f"{i} p(test) {p:.2f}" for i, p in
                                                                  zip(top["id"], top["p_test"])]),
                "test-like", "the most test-like train images", photos=True)


def add_label_issues(page: Page, data: AuditData, issues: pd.DataFrame, run: str, row_of: dict) -> None:
    page.section(f"Label issues (OOF of {run})")
    page.note("confident learning: the given label is below its class's mean self-confidence while another "
              "label is above its own; lowest margin first")
    if not len(issues):
        page.note("no label issues found")
        return
    top = issues.head(SHOWN)
    titles = [f"{r.id}: given {r.given} ({r.p_given:.2f}) -> {r.suggested} ({r.p_suggested:.2f})"
              for r in top.itertuples()]
    page.figure(gallery([data.rgb(row_of[(r, "train")]) for r in top["id"]], titles, ncols=4, width=2.4),
                "label-issues", "rows whose given label the run doubts most", photos=True)
    page.table(issues.head(100), "label-issue-rows", "label_issues.csv (first 100 rows)")


@styled
def write_report(folder: Path, data: AuditData, summary: pd.DataFrame, pairs: pd.DataFrame,
                 outliers: pd.DataFrame, shift: dict | None, issues: pd.DataFrame | None, run: str | None) -> Path:
    page = Page(f"audit of {data.comp.name}", folder)
    page.section("Summary")
    page.note(f"{data.n_train} train and {len(data.ids) - data.n_train} test images of {data.comp.root}")
    page.table(summary, "summary")
    row_of = {(i, s): k for k, (i, s) in enumerate(zip(data.ids, data.split))}
    add_duplicates(page, data, pairs, row_of)
    add_outliers(page, data, outliers)
    if shift is not None:
        add_shift(page, data, **shift)
    if issues is not None:
        add_label_issues(page, data, issues, run, row_of)
    index = page.write()
    return index.replace(folder / "report.html")

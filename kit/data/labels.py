"""Which column(s) of train.csv hold the labels, how a label cell splits into labels, and the (n, C) matrix.

Layouts: one 0/1 column per class (`onehot`); one column with one label per row (`single`, multi-class);
one column with several labels per row split by a separator (`separated`: space, comma, semicolon or pipe,
multi-label). Detection reads the column names (any case) and the cells; every choice can be forced
(`label_col`, `label_cols`, `label_sep`, `task`), and an ambiguous column is an error naming the rows.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from kit.data.errors import DataError, examples
from kit.metrics import MULTICLASS, MULTILABEL

ONEHOT, SINGLE, SEPARATED = "onehot", "single", "separated"
# label column names seen in Kaggle image competitions, matched in any case, first match wins
LABEL_COLUMN_NAMES = ("labels", "label", "tags", "attribute_ids", "target", "targets", "predicted", "class",
                      "classes", "class_name", "category", "categories", "species", "breed", "diagnosis")
# plural names announce several labels per row: multi-label even when every train row has one
PLURAL_NAMES = ("labels", "tags", "attribute_ids", "targets", "classes", "categories")
ONEHOT_VALUES = ("0", "1", "0.0", "1.0")
SEPARATOR_NAMES = {"space": " ", "comma": ",", "semicolon": ";", "pipe": "|", "none": ""}
MARKS = (",", ";", "|")  # explicit separators; whitespace is the fallback


def separator(name: str | None) -> str | None:
    """`--label-sep` value -> the separator (" " splits on any whitespace, "" never splits); None = detect."""
    if name is None:
        return None
    if name in SEPARATOR_NAMES:
        return SEPARATOR_NAMES[name]
    if name in (" ", *MARKS):
        return name
    raise DataError(f"label_sep must be one of {sorted(SEPARATOR_NAMES)} or one of ' ,;|', got {name!r}")


def find_label_columns(frame: pd.DataFrame, where, exclude, label_col=None, label_cols=None):
    """(layout hint, columns): explicit columns first, then a known label column name in any case, then
    one-hot 0/1 columns, then the single remaining column, else an error listing the columns."""
    if label_cols is not None:
        _require(frame, label_cols, where)
        return ONEHOT, list(label_cols)
    if label_col is not None:
        _require(frame, [label_col], where)
        return None, [label_col]
    by_lower = {c.lower(): c for c in reversed(frame.columns) if c not in exclude}
    named = next((by_lower[n] for n in LABEL_COLUMN_NAMES if n in by_lower), None)
    if named is not None:
        return None, [named]
    rest = [c for c in frame.columns if c not in exclude]
    if rest and all(frame[c].str.strip().isin(ONEHOT_VALUES).all() for c in rest):
        return ONEHOT, rest
    if len(rest) == 1:
        return None, rest
    raise DataError(f"{where}: cannot tell the label column(s) among {list(frame.columns)}: no column named like "
                    f"a label ({', '.join(LABEL_COLUMN_NAMES[:6])}, ...) and the others are not all 0/1; "
                    f"pass --label-col NAME or --label-cols A B ...")


def _require(frame: pd.DataFrame, cols, where) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; it has {list(frame.columns)}")


def _looks_like_multiword_names(cells: pd.Series) -> bool:
    """Multi-class names with spaces ("Acer rubrum") rather than space-separated labels: every row has the
    same number (> 1) of words and no word ever appears at two positions. Multi-label rows vary in length
    and put a label at whatever position the row's other labels leave it."""
    words = [c.split() for c in cells]
    lengths = {len(w) for w in words}
    if len(lengths) != 1 or lengths == {1}:
        return False
    positions: dict[str, int] = {}
    return all(positions.setdefault(word, k) == k for row in words for k, word in enumerate(row))


def detect_separator(cells: pd.Series, ids, where, task: str | None) -> str:
    """The separator of a label column: a mark (`,;|`) when cells use exactly one of them, else whitespace
    when cells hold several words (unless they read as multi-word class names or the task is multi-class),
    else "" (one label per cell). Cells using two different marks are an error naming rows of each."""
    used = {m: ids[cells.str.contains(re.escape(m)).to_numpy()] for m in MARKS}
    used = {m: rows for m, rows in used.items() if len(rows)}
    if len(used) > 1:
        detail = "; ".join(f"{m!r} at ids {examples(rows, 5)}" for m, rows in used.items())
        raise DataError(f"{where}: label cells mix separators ({detail}); pass --label-sep to choose one")
    if used:
        return next(iter(used))
    if task == MULTICLASS or not cells.str.contains(r"\s").any():
        return ""
    return "" if task is None and _looks_like_multiword_names(cells) else " "


def split_cells(cells: pd.Series, sep: str) -> list[list[str]]:
    """Label lists per row; empty pieces ("a,,b", trailing separators) are dropped."""
    if sep == "":
        return [[c] if c else [] for c in cells]
    pieces = (c.split() if sep == " " else c.split(sep) for c in cells)
    return [[p.strip() for p in row if p.strip()] for row in pieces]


def class_sort_key(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)  # "2" before "10"


def label_matrix(rows: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """(classes sorted, numbers numerically; (n, C) float32 0/1) from per-row label lists."""
    classes = sorted({lab for labs in rows for lab in labs}, key=class_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    Y = np.zeros((len(rows), len(classes)), dtype=np.float32)
    for r, labs in enumerate(rows):
        Y[r, [index[lab] for lab in labs]] = 1
    return classes, Y


def onehot_matrix(frame: pd.DataFrame, cols: list[str], ids, where) -> np.ndarray:
    cells = frame[cols].apply(lambda col: col.str.strip())
    bad = ~cells.isin(ONEHOT_VALUES)
    if bad.to_numpy().any():
        rows = np.flatnonzero(bad.to_numpy().any(axis=1))
        raise DataError(f"{where}: one-hot columns {[c for c in cols if bad[c].any()]} hold values other than "
                        f"0/1 at ids {examples(ids[rows])}")
    return cells.astype(float).to_numpy(dtype=np.float32)


def read_labels(frame: pd.DataFrame, ids, where, exclude, label_col=None, label_cols=None, label_sep=None,
                task=None):
    """(layout, label columns, separator, classes, Y, task) of train.csv's rows."""
    hint, cols = find_label_columns(frame, where, exclude, label_col, label_cols)
    if hint == ONEHOT:
        return ONEHOT, cols, None, list(cols), onehot_matrix(frame, cols, ids, where), task or MULTILABEL
    cells = frame[cols[0]].str.strip()
    sep = separator(label_sep)
    sep = detect_separator(cells, ids, where, task) if sep is None else sep
    rows = split_cells(cells, sep)
    classes, Y = label_matrix(rows)
    # no separator in use: one label per row, so multi-class (an empty cell is then an error, not a row
    # without labels) unless the column's name says several labels
    task = task or (MULTILABEL if sep or cols[0].lower() in PLURAL_NAMES else MULTICLASS)
    return (SEPARATED if sep else SINGLE), cols, sep, classes, Y, task

"""The submission format, read off `sample_submission.csv`: its own column names and id order always win.

Three kinds: `labels` (one prediction column named anything: `Predicted`, `attribute_ids`, `tags`, ...,
holding a class name, or several joined by the sample's separator), `probabilities` (one column per class)
and `long` (one row per id and class, the id cell `<id>_<class>`, one value column).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kit.data.errors import DataError, examples
from kit.data.labels import MARKS, split_cells
from kit.metrics import MULTICLASS

LABELS, PROBABILITIES, LONG = "labels", "probabilities", "long"
SAMPLE_NAME = "sample_submission.csv"


@dataclass
class SubmissionFormat:
    id_col: str
    kind: str
    columns: list[str]          # the sample's value columns, in its order
    ids: list[str] = field(repr=False)              # test ids in the sample's order (long: first appearance)
    row_ids: list[str] | None = field(repr=False)   # long: the sample's id cells, in order
    sep: str = " "                                  # joins several labels in one cell (multi-label)

    def describe(self) -> dict:
        return {"id_col": self.id_col, "kind": self.kind, "columns": self.columns, "sep": self.sep}


def read_csv_text(path: Path) -> pd.DataFrame:
    """Everything as text, empty cells as "" (not NaN): ids and labels are compared as strings."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as CSV ({e})") from e
    return frame.apply(lambda col: col.str.strip())


def split_long_ids(cells: list[str], classes: list[str]) -> list[tuple[str, str]] | None:
    """(id, class) per cell when every cell is `<id>_<class>`, else None. Longest class names first, so
    `x_ab_c` splits on the class `ab_c` rather than `c`."""
    by_length = sorted(classes, key=len, reverse=True)
    pairs = []
    for cell in cells:
        cls = next((c for c in by_length if cell.endswith(f"_{c}") and len(cell) > len(c) + 1), None)
        if cls is None:
            return None
        pairs.append((cell[: -len(cls) - 1], cls))
    return pairs


def _joiner(values: pd.Series, train_sep: str | None) -> str:
    """The separator the sample shows (placeholders like `0 1 2`), else train's mark, else a space."""
    for mark in MARKS:
        if values.str.contains(re.escape(mark)).any():
            return mark
    if values.str.contains(r"\s").any():
        return " "
    return train_sep if train_sep in MARKS else " "


def read_format(path: Path, classes: list[str], task: str, train_sep: str | None,
                id_col: str | None = None) -> SubmissionFormat:
    """The submission format of the sample at `path` for a model predicting `classes`."""
    sample = read_csv_text(path)
    id_col = id_col if id_col in sample.columns else sample.columns[0]
    columns = [c for c in sample.columns if c != id_col]
    cells = sample[id_col].tolist()
    if sorted(columns) == sorted(classes):
        return SubmissionFormat(id_col, PROBABILITIES, columns, cells, None, " ")
    if len(columns) != 1:
        unknown, absent = sorted(set(classes) - set(columns)), sorted(set(columns) - set(classes))
        raise DataError(f"{path}: columns {columns} are neither one prediction column nor one column per class "
                        f"(classes without a column {unknown}; columns that are no class {absent})")
    pairs = split_long_ids(cells, classes)
    if pairs is not None and len({i for i, _ in pairs}) < len(pairs):
        ids = list(dict.fromkeys(i for i, _ in pairs))
        return SubmissionFormat(id_col, LONG, columns, ids, cells, " ")
    values = sample[columns[0]]
    sep = "" if task == MULTICLASS else _joiner(values, train_sep)
    known = set(classes)
    unknown = [f"{i}: {lab!r}" for i, labs in zip(cells, split_cells(values, sep)) for lab in labs
               if lab not in known]
    if unknown:
        raise DataError(f"{path}: labels in column {columns[0]!r} that no train row has: {examples(unknown)} "
                        f"(train classes: {examples(classes, 20)})")
    return SubmissionFormat(id_col, LABELS, columns, cells, None, sep or " ")

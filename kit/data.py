"""A competition folder -> validated arrays: train ids, the (n, C) 0/1 label matrix, image paths.

A folder holds `train.csv`, optionally `test.csv` and `sample_submission.csv`, and the images (either
`images/<id>.<ext>` or a path column). Three label layouts are understood: a space-separated `labels`
column (multi-label), a single `label` column (multi-class) and one 0/1 column per class (one-hot).
Every problem is a `DataError` naming the file and the offending ids, raised before any training starts.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kit.metrics import MULTICLASS, MULTILABEL

EMBEDDED_DATA = Path(__file__).parent / "embedded" / "bccd"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp")
ID_CANDIDATES = ("id", "image_id", "image")
SINGLE_LABEL_CANDIDATES = ("label", "class", "target")
PATH_CANDIDATES = ("path", "image_path", "filepath", "file_path", "filename")
RESERVED_CLASS_NAMES = ("id", "fold")  # column names of the OOF files
SPACE, SINGLE, ONEHOT = "space", "single", "onehot"
ONEHOT_VALUES = ("0", "1", "0.0", "1.0")


class DataError(ValueError):
    """Bad competition data; the message names the file and the offending ids, rows or files."""


def _examples(items, limit: int = 10) -> str:
    items = [str(i) for i in items]  # plain str: numpy scalars would print as np.str_(...)
    more = f" ... ({len(items)} in all)" if len(items) > limit else f" ({len(items)})"
    return f"{items[:limit]}{more}"


@dataclass
class Competition:
    root: Path
    name: str
    task: str
    layout: str
    classes: list[str]
    id_col: str
    label_cols: list[str]
    path_col: str | None
    group_col: str | None
    train_ids: np.ndarray
    Y: np.ndarray
    train_paths: list[Path]
    test_ids: np.ndarray | None
    test_paths: list[Path] | None
    groups: np.ndarray | None
    sample_submission: Path | None

    def describe(self) -> dict:
        """What identifies the data in a run's config.json (JSON-able)."""
        return {"root": str(Path(self.root).resolve()), "name": self.name, "task": self.task,
                "layout": self.layout, "classes": list(self.classes), "id_col": self.id_col,
                "label_cols": list(self.label_cols), "path_col": self.path_col, "group_col": self.group_col}


def _read_csv(path: Path) -> pd.DataFrame:
    # everything as text, empty cells as "" (not NaN): labels and ids are compared as strings
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as CSV ({e})") from e


def _require_columns(df: pd.DataFrame, cols, path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; it has {list(df.columns)}")


def _check_unique_ids(ids: pd.Series, path: Path) -> None:
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise DataError(f"{path}: duplicate ids {_examples(dup)}")
    empty = np.flatnonzero(ids.str.strip() == "")
    if len(empty):
        raise DataError(f"{path}: empty id in rows {_examples(empty + 2)}")  # +2: header, 1-based


def _class_sort_key(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)  # "2" before "10"


def _detect_layout(df, path, id_col, path_col, group_col, label_col, label_cols):
    """(layout, label_cols) from the keywords, else from the column names and content."""
    if label_cols is not None:
        _require_columns(df, label_cols, path)
        return ONEHOT, list(label_cols)
    if label_col is None:
        if "labels" in df.columns:
            return SPACE, ["labels"]
        found = [c for c in SINGLE_LABEL_CANDIDATES if c in df.columns]
        if found:
            return SINGLE, [found[0]]
        rest = [c for c in df.columns if c not in (id_col, path_col, group_col)]
        if rest and all(df[c].str.strip().isin(ONEHOT_VALUES).all() for c in rest):
            return ONEHOT, rest
        raise DataError(f"{path}: cannot tell the label column(s) among {list(df.columns)}: no `labels`/"
                        f"`label` column and the other columns are not all 0/1; pass label_col= or label_cols=")
    _require_columns(df, [label_col], path)
    values = df[label_col].str.strip()
    spaced = values.str.contains(r"\s", regex=True).any() or (values == "").any()
    return (SPACE if spaced else SINGLE), [label_col]


def _label_matrix(df, ids, path, layout, label_cols) -> tuple[list[str], np.ndarray]:
    if layout == ONEHOT:
        cells = df[label_cols].apply(lambda col: col.str.strip())
        bad = ~cells.isin(ONEHOT_VALUES)
        if bad.to_numpy().any():
            rows = np.flatnonzero(bad.to_numpy().any(axis=1))
            cols = [c for c in label_cols if bad[c].any()]
            raise DataError(f"{path}: one-hot columns {cols} hold values other than 0/1 at ids "
                            f"{_examples(ids[rows])}")
        return list(label_cols), cells.astype(float).to_numpy(dtype=np.float32)
    cells = df[label_cols[0]].str.strip()
    row_labels = [c.split() if layout == SPACE else ([c] if c else []) for c in cells]
    classes = sorted({lab for labs in row_labels for lab in labs}, key=_class_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    Y = np.zeros((len(df), len(classes)), dtype=np.float32)
    for r, labs in enumerate(row_labels):
        Y[r, [index[lab] for lab in labs]] = 1
    return classes, Y


def _find_images(ids, images_dir: Path, where: Path) -> list[Path]:
    """`images_dir/<id>.<ext>`: the extension is detected once, other extensions tried only on a miss."""
    try:
        present = set(os.listdir(images_dir))
    except FileNotFoundError:
        raise DataError(f"{where}: image folder {images_dir} does not exist (and no path column)") from None
    extensions = [*IMAGE_EXTENSIONS, *(e.upper() for e in IMAGE_EXTENSIONS)]

    def lookup(i: str) -> str | None:
        for ext in extensions:
            name = f"{i}.{ext}"
            if name in present or ("/" in i and (images_dir / name).is_file()):
                return ext
        return None

    usual = lookup(ids[0]) if len(ids) else None
    paths, missing = [], []
    for i in ids:
        ext = usual if usual is not None and (f"{i}.{usual}" in present) else lookup(i)
        if ext is None:
            missing.append(i)
        paths.append(images_dir / f"{i}.{ext}")
    if missing:
        raise DataError(f"{where}: ids with no image {images_dir}/<id>.<{'|'.join(IMAGE_EXTENSIONS)}>: "
                        f"{_examples(missing)}")
    return paths


def _path_column_images(df, path_col, ids, root: Path, where: Path) -> list[Path]:
    paths = [Path(p) if os.path.isabs(p) else root / p for p in df[path_col].str.strip()]
    missing = [f"{i} -> {p}" for i, p in zip(ids, paths) if not p.is_file()]
    if missing:
        raise DataError(f"{where}: ids whose `{path_col}` image file does not exist: {_examples(missing)}")
    return paths


def _images(df, ids, root, path_col, where) -> list[Path]:
    if path_col is not None and path_col in df.columns:
        return _path_column_images(df, path_col, ids, root, where)
    return _find_images(ids, root / "images", where)


def _check_readable(paths: list[Path], ids, where: Path) -> None:
    """Cheap header read of every image (no decoding), so a broken file fails now, not mid-training."""
    bad = []
    for i, p in zip(ids, paths):
        try:
            with Image.open(p) as im:
                im.verify()
        except Exception as e:  # PIL raises many types for broken files
            bad.append(f"{i} ({p.name}: {type(e).__name__})")
    if bad:
        raise DataError(f"{where}: unreadable images {_examples(bad)}")


def _check_classes(classes, Y, train_ids, task, train_csv, label_cols) -> None:
    reserved = [c for c in classes if c in RESERVED_CLASS_NAMES]
    if reserved:
        raise DataError(f"{train_csv}: class name(s) {reserved} clash with OOF file columns "
                        f"{list(RESERVED_CLASS_NAMES)}; rename them")
    if not classes:
        raise DataError(f"{train_csv}: no labels at all in {label_cols}")
    counts = Y.sum(axis=1)
    if task == MULTICLASS:
        empty, several = train_ids[counts == 0], train_ids[counts > 1]
        problems = [f"ids with {what} {_examples(ids)}" for what, ids in
                    (("no label", empty), ("several labels", several)) if len(ids)]
        if problems:
            raise DataError(f"{train_csv}: a multi-class task needs exactly one label per row; "
                            + "; ".join(problems))
    never = [c for c, n in zip(classes, Y.sum(axis=0)) if n == 0]
    if never:
        warnings.warn(f"{train_csv}: classes with no positive row in train: {never}", stacklevel=3)


def _check_sample_submission(path, id_col, layout, label_cols, classes, train_csv, test_ids, test_csv):
    """Its class columns (if it has one per class) must be the train classes; its ids the test ids."""
    sub = _read_csv(path)
    _require_columns(sub, [id_col], path)
    columns = [c for c in sub.columns if c != id_col]
    if columns and not (layout != ONEHOT and columns == label_cols):  # one probability column per class
        unknown, absent = sorted(set(classes) - set(columns)), sorted(set(columns) - set(classes))
        if unknown or absent:
            raise DataError(f"{train_csv} vs {path}: train labels that are not submission columns {unknown}; "
                            f"submission columns never seen as a train label {absent}")
    if test_ids is not None and set(sub[id_col].str.strip()) != set(test_ids):
        diff = sorted(set(sub[id_col].str.strip()) ^ set(test_ids))
        raise DataError(f"{path} vs {test_csv}: ids in one but not the other {_examples(diff)}")


def load_competition(root, *, id_col=None, label_col=None, label_cols=None, path_col=None,
                     group_col=None, task=None, check_images=True) -> Competition:
    """Read and validate a competition folder; see the module docstring for the layouts."""
    root = Path(root).resolve()  # absolute image paths survive a change of working directory
    train_csv = root / "train.csv"
    if not train_csv.is_file():
        raise DataError(f"{train_csv}: missing (a competition folder needs train.csv)")
    train = _read_csv(train_csv)
    if id_col is None:
        id_col = next((c for c in ID_CANDIDATES if c in train.columns), train.columns[0])
    if path_col is None:
        path_col = next((c for c in PATH_CANDIDATES if c in train.columns), None)
    _require_columns(train, [c for c in (id_col, path_col, group_col) if c], train_csv)
    if task not in (None, MULTILABEL, MULTICLASS):
        raise DataError(f"task must be {MULTILABEL!r} or {MULTICLASS!r}, got {task!r}")
    train[id_col] = train[id_col].str.strip()
    _check_unique_ids(train[id_col], train_csv)
    train_ids = train[id_col].to_numpy(dtype=str)

    layout, label_cols = _detect_layout(train, train_csv, id_col, path_col, group_col, label_col, label_cols)
    classes, Y = _label_matrix(train, train_ids, train_csv, layout, label_cols)
    task = task or (MULTICLASS if layout == SINGLE else MULTILABEL)
    _check_classes(classes, Y, train_ids, task, train_csv, label_cols)
    train_paths = _images(train, train_ids, root, path_col, train_csv)

    test_ids = test_paths = None
    test_csv = root / "test.csv"
    if test_csv.is_file():
        test = _read_csv(test_csv)
        _require_columns(test, [id_col], test_csv)
        test[id_col] = test[id_col].str.strip()
        _check_unique_ids(test[id_col], test_csv)
        test_ids = test[id_col].to_numpy(dtype=str)
        test_paths = _images(test, test_ids, root, path_col, test_csv)
    sample_submission = root / "sample_submission.csv"
    sample_submission = sample_submission if sample_submission.is_file() else None
    if sample_submission is not None:
        _check_sample_submission(sample_submission, id_col, layout, label_cols, classes, train_csv,
                                 test_ids, test_csv)
    if check_images:
        _check_readable(train_paths, train_ids, train_csv)
        if test_paths is not None:
            _check_readable(test_paths, test_ids, test_csv)
    groups = train[group_col].to_numpy(dtype=str) if group_col else None
    return Competition(root=root, name=root.name, task=task, layout=layout, classes=classes,
                       id_col=id_col, label_cols=label_cols, path_col=path_col, group_col=group_col,
                       train_ids=train_ids, Y=Y, train_paths=train_paths, test_ids=test_ids,
                       test_paths=test_paths, groups=groups, sample_submission=sample_submission)

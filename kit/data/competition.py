"""A competition folder -> a validated `Competition`: train ids, the (n, C) 0/1 labels, image files, test ids
and the submission format. Every problem is a `DataError` naming the file and the offending ids, raised
before any training starts (images are decoded, and so checked, when the cache is built: `kit.cache`).

The folder holds `train.csv` (or the ImageFolder layout `train/<class>/<file>`), optionally `test.csv` and
`sample_submission.csv` (test ids come from the first that exists, else from a flat `test/` folder), and the
images (see kit.data.folders). Label layouts: see kit.data.labels; submission formats: kit.data.sample.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.data import folders, labels
from kit.data.errors import DataError, examples
from kit.data.sample import SAMPLE_NAME, SubmissionFormat, read_csv_text, read_format
from kit.metrics import MULTICLASS, MULTILABEL

EMBEDDED_DATA = Path(__file__).resolve().parent.parent / "embedded" / "bccd"
ID_CANDIDATES = ("id", "image_id", "image_name", "imageid", "image", "img_id")
PATH_CANDIDATES = ("path", "image_path", "filepath", "file_path", "filename")
RESERVED_CLASS_NAMES = ("id", "fold")  # column names of the OOF files
IMAGEFOLDER = "imagefolder"


@dataclass
class Competition:
    root: Path
    name: str
    task: str
    layout: str
    classes: list[str]
    id_col: str
    label_cols: list[str]
    label_sep: str | None
    path_col: str | None
    group_col: str | None
    channels: list[str] | None
    train_ids: np.ndarray
    Y: np.ndarray
    train_paths: list            # a Path per id, or a tuple of Paths (one per channel file)
    test_ids: np.ndarray | None
    test_paths: list | None
    groups: np.ndarray | None
    sample_submission: Path | None
    submission: SubmissionFormat | None
    train_source: Path | None = None   # the file or folder the train ids came from (for messages)
    test_source: Path | None = None

    def describe(self) -> dict:
        """What identifies the data in a run's config.json (JSON-able)."""
        return {"root": str(Path(self.root).resolve()), "name": self.name, "task": self.task,
                "layout": self.layout, "classes": list(self.classes), "id_col": self.id_col,
                "label_cols": list(self.label_cols), "label_sep": self.label_sep, "path_col": self.path_col,
                "group_col": self.group_col, "channels": self.channels,
                "submission": self.submission.describe() if self.submission else None}


def _column(frame: pd.DataFrame, wanted: str | None, candidates, where, default_first: bool) -> str | None:
    """`wanted` (must exist), else the first candidate name present in any case, else the first column."""
    if wanted is not None:
        if wanted not in frame.columns:
            raise DataError(f"{where}: missing column {wanted!r}; it has {list(frame.columns)}")
        return wanted
    by_lower = {c.lower(): c for c in reversed(frame.columns)}
    found = next((by_lower[c] for c in candidates if c in by_lower), None)
    return found if found is not None or not default_first else frame.columns[0]


def _check_ids(ids: pd.Series, where: Path) -> np.ndarray:
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise DataError(f"{where}: duplicate ids {examples(dup)}")
    empty = np.flatnonzero(ids.to_numpy() == "")
    if len(empty):
        raise DataError(f"{where}: empty id in rows {examples(empty + 2)}")  # +2: header, 1-based
    return ids.to_numpy(dtype=str)


def _check_classes(classes, Y, train_ids, task, where, label_cols) -> None:
    reserved = [c for c in classes if c in RESERVED_CLASS_NAMES]
    if reserved:
        raise DataError(f"{where}: class name(s) {reserved} clash with OOF file columns "
                        f"{list(RESERVED_CLASS_NAMES)}; rename them")
    if not classes:
        raise DataError(f"{where}: no labels at all in {label_cols}")
    counts = Y.sum(axis=1)
    if task == MULTICLASS:
        problems = [f"ids with {what} {examples(ids)}" for what, ids in
                    (("no label", train_ids[counts == 0]), ("several labels", train_ids[counts > 1])) if len(ids)]
        if problems:
            raise DataError(f"{where}: a multi-class task needs exactly one label per row; " + "; ".join(problems)
                            + " (multi-class names with spaces or commas: --label-sep none)")
    never = [c for c, n in zip(classes, Y.sum(axis=0)) if n == 0]
    if never:
        warnings.warn(f"{where}: classes with no positive row in train: {never}", stacklevel=3)


def _train_table(root: Path, id_col, label_col, label_cols, label_sep, path_col, group_col, task):
    """(frame, where, id_col, path_col, layout, label_cols, sep, classes, Y, task) of train.csv or ImageFolder."""
    train_csv = root / "train.csv"
    if folders.is_image_folder_layout(root):
        ids, names, files = folders.read_image_folder(root)
        frame = pd.DataFrame({"id": ids, "label": names, "path": [str(f) for f in files]})
        classes, Y = labels.label_matrix([[n] for n in names])
        return frame, root / "train", "id", "path", IMAGEFOLDER, ["label"], "", classes, Y, task or MULTICLASS
    if not train_csv.is_file():
        raise DataError(f"{train_csv}: missing (a competition folder needs train.csv or train/<class>/ folders)")
    frame = read_csv_text(train_csv)
    id_col = _column(frame, id_col, ID_CANDIDATES, train_csv, default_first=True)
    path_col = _column(frame, path_col, PATH_CANDIDATES, train_csv, default_first=False)
    if group_col is not None:
        _column(frame, group_col, (), train_csv, default_first=False)
    ids = _check_ids(frame[id_col], train_csv)
    layout, label_cols, sep, classes, Y, task = labels.read_labels(
        frame, ids, train_csv, {id_col, path_col, group_col}, label_col, label_cols, label_sep, task)
    return frame, train_csv, id_col, path_col, layout, label_cols, sep, classes, Y, task


def _test_ids(root: Path, id_col: str, fmt: SubmissionFormat | None):
    """(test frame or None, where, ids or None) from test.csv, else the sample, else a flat test/ folder."""
    test_csv = root / "test.csv"
    if test_csv.is_file():
        frame = read_csv_text(test_csv)
        col = _column(frame, id_col if id_col in frame.columns else None, (id_col.lower(), *ID_CANDIDATES),
                      test_csv, default_first=True)
        return frame, test_csv, _check_ids(frame[col], test_csv)
    if fmt is not None:
        return None, root / SAMPLE_NAME, _check_ids(pd.Series(fmt.ids, dtype=str), root / SAMPLE_NAME)
    if (root / "test").is_dir():
        return None, root / "test", folders.folder_test_ids(root / "test")
    return None, root, None


def load_competition(root, *, id_col=None, label_col=None, label_cols=None, label_sep=None, path_col=None,
                     group_col=None, task=None, image_dir=None, test_image_dir=None,
                     channels=None) -> Competition:
    """Read and validate a competition folder; see the module docstring."""
    root = Path(root).resolve()  # absolute image paths survive a change of working directory
    if not root.is_dir():
        raise DataError(f"{root}: competition folder does not exist")
    if task not in (None, MULTILABEL, MULTICLASS):
        raise DataError(f"task must be {MULTILABEL!r} or {MULTICLASS!r}, got {task!r}")
    frame, where, id_col, path_col, layout, label_cols, sep, classes, Y, task = _train_table(
        root, id_col, label_col, label_cols, label_sep, path_col, group_col, task)
    train_ids = frame[id_col].to_numpy(dtype=str)
    _check_classes(classes, Y, train_ids, task, where, label_cols)
    train_paths = _image_files(frame, train_ids, root, path_col, image_dir, folders.TRAIN_FOLDERS, channels, where)

    test = load_test_set(root, classes=classes, task=task, id_col=id_col, label_sep=sep, path_col=path_col,
                         test_image_dir=test_image_dir, channels=channels, bare=False)
    groups = frame[group_col].to_numpy(dtype=str) if group_col else None
    return Competition(root=root, name=root.name, task=task, layout=layout, classes=classes, id_col=id_col,
                       label_cols=label_cols, label_sep=sep, path_col=path_col, group_col=group_col,
                       channels=list(channels) if channels else None, train_ids=train_ids, Y=Y,
                       train_paths=train_paths, test_ids=test.ids, test_paths=test.paths, groups=groups,
                       sample_submission=test.sample, submission=test.submission, train_source=where,
                       test_source=test.source)


@dataclass
class TestSet:
    """The images to predict: ids in submission order, their files, and the submission format (if any)."""
    root: Path
    ids: np.ndarray | None
    paths: list | None
    submission: SubmissionFormat | None
    sample: Path | None
    source: Path | None


def load_test_set(root, *, classes: list[str], task: str, id_col: str = "id", label_sep: str | None = None,
                  path_col: str | None = None, test_image_dir: str | None = None,
                  channels: list[str] | None = None, bare: bool = True) -> TestSet:
    """Test ids and images of a competition folder (test.csv, else the sample's ids, else a flat test/ folder)
    or, when the folder has none of these, of a bare folder of images (ids = file stems). The sample's format
    is read against the classes a model predicts. `bare=False`: a folder without a test set has no test ids."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: folder does not exist")
    sample = root / SAMPLE_NAME
    fmt = read_format(sample, classes, task, label_sep, id_col) if sample.is_file() else None
    frame, where, ids = _test_ids(root, id_col, fmt)
    if ids is None:
        if not bare:
            return TestSet(root, None, None, None, None, None)
        folder = next((f for f in (root, root / "images") if f.is_dir() and len(folders.bare_folder_ids(f, channels))),
                      None)
        if folder is None:
            raise DataError(f"{root}: no test.csv, {SAMPLE_NAME}, test/ or images/ folder or image files to predict")
        ids = folders.bare_folder_ids(folder, channels)
        return TestSet(root, ids, folders.image_files(ids, folder, channels, folder), None, None, folder)
    if fmt is not None and frame is not None and set(fmt.ids) != set(ids):
        raise DataError(f"{sample} vs {where}: ids in one but not the other "
                        f"{examples(sorted(set(fmt.ids) ^ set(ids)))}")
    paths = None
    if len(ids):
        source = frame if frame is not None and path_col in frame.columns else None
        paths = _image_files(source, ids, root, path_col if source is not None else None, test_image_dir,
                             folders.TEST_FOLDERS, channels, where)
    return TestSet(root, ids, paths, fmt, sample if fmt is not None else None, where)


def _image_files(frame, ids, root, path_col, explicit, preferred, channels, where) -> list:
    if path_col is not None and frame is not None and path_col in frame.columns:
        return folders.path_column_files(frame, path_col, ids, root, where)
    folder = folders.find_image_folder(root, ids, preferred, explicit, channels, where)
    return folders.image_files(ids, folder, channels, where)

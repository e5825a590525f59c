"""Files that tell kit.cv about rows, read against a competition: `--groups-file` (id,group: a group never
splits across folds, e.g. the duplicate clusters of kit.audit) and `--exclude-ids` (train rows left out of
training). Every problem is a DataError naming the file and the offending ids.

Excluded rows keep their fold and are still validated: their OOF predictions come from the fold model that
held them out, so the folds file, the OOF coverage and every downstream step (tune, blend, report) are the
same as for a run without exclusions, and the OOF score is measured on the same rows as theirs.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from kit.data.competition import Competition
from kit.data.errors import DataError, examples
from kit.data.sample import read_csv_text

GROUPS_FILE = "groups-file"  # the competition's group_col when groups come from a file (in the folds name)


def _id_table(path: str | Path, needed: tuple[str, ...], flag: str):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {flag} file does not exist")
    frame = read_csv_text(path)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: {flag} needs column(s) {missing}; it has {list(frame.columns)}")
    return path, frame


def _known_train_ids(ids, comp: Competition, path: Path) -> None:
    train = set(map(str, comp.train_ids))
    unknown = [i for i in ids if i not in train]
    if unknown:
        raise DataError(f"{path}: ids that are not train ids of {comp.train_source}: {examples(unknown)}")


def with_groups_file(comp: Competition, path: str | Path | None) -> Competition:
    """`comp` with the groups of `path` (train ids missing from it are each their own group)."""
    if path is None:
        return comp
    if comp.groups is not None:
        raise DataError(f"{path}: --groups-file and --group-col both give groups; pass one of them")
    path, frame = _id_table(path, ("id", "group"), "--groups-file")
    dup = frame["id"][frame["id"].duplicated()].unique()
    if len(dup):
        raise DataError(f"{path}: duplicate ids {examples(dup)}")
    _known_train_ids(frame["id"], comp, path)
    given = dict(zip(frame["id"], frame["group"]))
    # a prefix no given group can carry keeps the ungrouped rows apart from every named group
    groups = np.array([f"g:{given[i]}" if i in given else f"id:{i}" for i in map(str, comp.train_ids)])
    return replace(comp, groups=groups, group_col=GROUPS_FILE)


def excluded_rows(comp: Competition, path: str | Path | None) -> np.ndarray:
    """(n_train,) bool: the train rows listed in `path` (an `id` column); all False without a file."""
    if path is None:
        return np.zeros(len(comp.train_ids), dtype=bool)
    path, frame = _id_table(path, ("id",), "--exclude-ids")
    _known_train_ids(frame["id"], comp, path)
    mask = np.isin(comp.train_ids.astype(str), frame["id"].to_numpy(dtype=str))
    if mask.all():
        raise DataError(f"{path}: excludes every train row")
    return mask

"""Where the image files of a competition are: `images/<id>.<ext>`, `train/` + `test/` (or any sub-folder
that holds the ids), an explicit folder, a path column, one file per channel (`<id>_<suffix>.<ext>`, as HPA
ships RGBY), or the ImageFolder layout `train/<class>/<file>` with no train.csv.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kit.data.errors import DataError, examples

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "gif")
EXTENSIONS = (*IMAGE_EXTENSIONS, *(e.upper() for e in IMAGE_EXTENSIONS))
# folder names tried first, in order, before any other sub-folder of the competition
TRAIN_FOLDERS = ("images", "train", "train_images", "train-jpg", "train-tif", "train-tif-v2", "img", "imgs")
PROBE = 20  # ids looked up in every candidate folder
TEST_FOLDERS = ("images", "test", "test_images", "test-jpg", "test-tif", "test-tif-v2", "img", "imgs")


class _Listing:
    """File names of one folder, listed once (a 100k-image folder is not stat'ed per id)."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            self.names = set(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            self.names = set()

    def find(self, stem: str) -> Path | None:
        """`stem` itself when it names a file (ids with extensions), else `stem.<ext>`."""
        for name in (stem, *(f"{stem}.{ext}" for ext in EXTENSIONS)):
            if name in self.names or ("/" in stem and (self.folder / name).is_file()):
                return self.folder / name
        return None


def _first_file(stem: str, channels: list[str] | None) -> str:
    return f"{stem}_{channels[0]}" if channels else stem


def find_image_folder(root: Path, ids, preferred: tuple, explicit: str | None, channels: list[str] | None,
                      where: Path) -> Path:
    """The folder holding the images of `ids`: `explicit` (relative to root), else the one of the preferred
    names, then of the other sub-folders, that holds most of the first ids (missing ones are named later)."""
    if explicit is not None:
        folder = Path(explicit) if os.path.isabs(explicit) else root / explicit
        if not folder.is_dir():
            raise DataError(f"{where}: image folder {folder} does not exist")
        return folder
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    candidates = [n for n in preferred if n in subfolders] + [n for n in subfolders if n not in preferred]
    probe = list(ids[:PROBE])
    hits = {name: sum(_Listing(root / name).find(_first_file(i, channels)) is not None for i in probe)
            for name in candidates}
    best = max(candidates, key=lambda n: hits[n], default=None)  # first of the preferred on a tie
    if best is None or hits[best] == 0:
        raise DataError(f"{where}: no image for ids {examples(probe, 3)} in any folder of {root} (tried "
                        f"{candidates}); pass --image-dir / --test-image-dir or a path column (--path-col)")
    return root / best


def image_files(ids, folder: Path, channels: list[str] | None, where: Path) -> list:
    """One path per id (a tuple of paths, one per channel suffix, with `channels`); missing ones named."""
    listing = _Listing(folder)
    files, missing = [], []
    for i in ids:
        found = [listing.find(_first_file(i, [c])) for c in channels] if channels else [listing.find(i)]
        if any(f is None for f in found):
            missing.append(i if not channels else f"{i} (channel {channels[found.index(None)]})")
        files.append(tuple(found) if channels else found[0])
    if missing:
        pattern = f"<id>_<{'|'.join(channels)}>" if channels else "<id>"
        raise DataError(f"{where}: ids with no image {folder}/{pattern}.<{'|'.join(IMAGE_EXTENSIONS)}>: "
                        f"{examples(missing)}")
    return files


def path_column_files(frame: pd.DataFrame, path_col: str, ids, root: Path, where: Path) -> list[Path]:
    paths = [Path(p) if os.path.isabs(p) else root / p for p in frame[path_col].str.strip()]
    missing = [f"{i} -> {p}" for i, p in zip(ids, paths) if not p.is_file()]
    if missing:
        raise DataError(f"{where}: ids whose `{path_col}` image file does not exist: {examples(missing)}")
    return paths


def is_image_folder_layout(root: Path) -> bool:
    """No train.csv, and `train/` holds class folders of images."""
    train = root / "train"
    return not (root / "train.csv").exists() and train.is_dir() and any(p.is_dir() for p in train.iterdir())


def read_image_folder(root: Path) -> tuple[np.ndarray, list[str], list[Path]]:
    """(ids, one label per id, files) of `train/<class>/<file>`; ids are file stems, or `<class>/<stem>`
    when two classes hold files of the same stem."""
    files = sorted((d.name, f) for d in (root / "train").iterdir() if d.is_dir() and not d.name.startswith(".")
                   for f in d.iterdir() if f.suffix.lstrip(".") in EXTENSIONS)
    if not files:
        raise DataError(f"{root / 'train'}: no image files in its class folders")
    stems = [f.stem for _, f in files]
    unique = len(set(stems)) == len(stems)
    ids = np.array([f.stem if unique else f"{label}/{f.stem}" for label, f in files], dtype=str)
    return ids, [label for label, _ in files], [f for _, f in files]


def folder_test_ids(folder: Path) -> np.ndarray:
    """Stems of the image files of a flat test folder, sorted."""
    return np.array(sorted(f.stem for f in folder.iterdir() if f.suffix.lstrip(".") in EXTENSIONS), dtype=str)


def bare_folder_ids(folder: Path, channels: list[str] | None = None) -> np.ndarray:
    """Ids of a bare folder of images (no csv): file stems, sorted; with channel files `<id>_<suffix>`, the
    ids whose every channel file is there."""
    stems = {f.stem for f in folder.iterdir() if f.is_file() and f.suffix.lstrip(".") in EXTENSIONS}
    if not channels:
        return np.array(sorted(stems), dtype=str)
    first = f"_{channels[0]}"
    return np.array(sorted(s[: -len(first)] for s in stems if s.endswith(first)), dtype=str)

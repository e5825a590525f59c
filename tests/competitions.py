"""Competition folders that tests build inside their own tmp dirs, so the suite needs nothing beside the
repository. Real pixels come from scikit-learn's bundled digits (1,797 8x8 scans, 10 classes, no
download) and the embedded bccd photos; every folder follows the Kaggle layout kit reads:
`train.csv`, `test.csv`, `sample_submission.csv`, `solution.csv` and `images/<id>.png`.

Digits are orientation-sensitive (a 6 rotated is a 9), which is what the symmetry tests need.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kit.data import EMBEDDED_DATA

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digit_images(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (n, size, size, 3) uint8 RGB (ink tinted per class so colour carries a little
    signal too) and their (n,) labels 0..9, in scikit-learn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = (digits.images / 16.0 * 255).astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR)) for g in gray])
    tint = 0.6 + 0.4 * np.linspace(0, 1, 10)[digits.target][:, None, None]
    rgb = np.stack([images, (images * tint).astype(np.uint8), 255 - images // 2], axis=-1)
    return rgb, digits.target


def pick_rows(labels: np.ndarray, n: int, seed: int, exclude=()) -> np.ndarray:
    """About `n` row indices, the same share of every class (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    exclude = set(int(i) for i in exclude)
    classes = np.unique(labels)
    chosen = []
    for c in classes:
        rows = [int(i) for i in rng.permutation(np.flatnonzero(labels == c)) if int(i) not in exclude]
        chosen += rows[: max(1, n // len(classes))]
    return np.sort(np.array(chosen))


def write_images(folder: Path, ids, images: np.ndarray, ext: str = "png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in zip(ids, images):
        path = folder / f"{i}.{ext}"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def digits_competition(dest: Path, n_train: int = 300, n_test: int = 60, size: int = 32, seed: int = 0,
                       names: bool = True, ext: str = "png") -> Path:
    """A multi-class competition (`id,label`) of digits: `names` gives class names ("seven"), else the
    integer labels ("7"); images are `images/<id>.<ext>`. The sample submission's labels are a placeholder
    class, as on Kaggle."""
    images, target = digit_images(size)
    train_rows = pick_rows(target, n_train, seed)
    test_rows = pick_rows(target, n_test, seed + 1, exclude=train_rows)
    label = (lambda t: DIGIT_NAMES[t]) if names else str
    train_ids = [f"d{r:04d}" for r in train_rows]
    test_ids = [f"d{r:04d}" for r in test_rows]
    dest.mkdir(parents=True, exist_ok=True)
    write_images(dest / "images", train_ids + test_ids, images[np.concatenate([train_rows, test_rows])], ext)
    pd.DataFrame({"id": train_ids, "label": [label(t) for t in target[train_rows]]}).to_csv(
        dest / "train.csv", index=False)
    pd.DataFrame({"id": test_ids}).to_csv(dest / "test.csv", index=False)
    pd.DataFrame({"id": test_ids, "label": label(0)}).to_csv(dest / "sample_submission.csv", index=False)
    pd.DataFrame({"id": test_ids, "label": [label(t) for t in target[test_rows]]}).to_csv(
        dest / "solution.csv", index=False)
    return dest


def bccd_subset(dest: Path, n_train: int | None = None, n_test: int | None = None) -> Path:
    """The embedded bccd competition (multi-label, space-separated `labels`), cut to its first rows;
    images are symlinked, the csv files (solution included) cut to the kept ids."""
    dest.mkdir(parents=True)
    (dest / "images").mkdir()
    train = pd.read_csv(EMBEDDED_DATA / "train.csv", dtype=str, keep_default_na=False)
    test = pd.read_csv(EMBEDDED_DATA / "test.csv", dtype=str, keep_default_na=False)
    train, test = train.iloc[:n_train], test.iloc[:n_test]
    train.to_csv(dest / "train.csv", index=False)
    for name in ("test.csv", "sample_submission.csv", "solution.csv"):
        frame = pd.read_csv(EMBEDDED_DATA / name, dtype=str, keep_default_na=False)
        frame[frame["id"].isin(set(test["id"]))].to_csv(dest / name, index=False)
    for i in [*train["id"], *test["id"]]:
        (dest / "images" / f"{i}.jpg").symlink_to(EMBEDDED_DATA / "images" / f"{i}.jpg")
    return dest

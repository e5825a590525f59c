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


def digit_mosaics(n: int, size: int = 32, seed: int = 0, max_digits: int = 3) -> tuple[np.ndarray, list]:
    """Multi-label images: 1..max_digits digits placed in the cells of a 2x2 grid (the rest blank); the
    labels of an image are the digit values it shows. Returns ((n, size, size) uint8 gray, [label sets])."""
    images, target = digit_images(size // 2)
    gray = images[..., 0]
    rng = np.random.default_rng(seed)
    out, label_sets = np.zeros((n, size, size), np.uint8), []
    half = size // 2
    for k in range(n):
        count = int(rng.integers(1, max_digits + 1))
        cells = rng.choice(4, size=count, replace=False)
        rows = rng.choice(len(gray), size=count, replace=False)
        for cell, row in zip(cells, rows):
            y, x = divmod(int(cell), 2)
            out[k, y * half:(y + 1) * half, x * half:(x + 1) * half] = gray[row]
        label_sets.append(sorted({int(target[r]) for r in rows}))
    return out, label_sets


def _split(n_train: int, n_test: int, seed: int):
    images, label_sets = digit_mosaics(n_train + n_test, seed=seed)
    return (images[:n_train], label_sets[:n_train]), (images[n_train:], label_sets[n_train:])


def hpa_competition(dest: Path, n_train: int = 80, n_test: int = 24, seed: int = 0) -> Path:
    """Human Protein Atlas style: `train.csv` = `Id,Target` (space-separated integer labels), one grayscale
    PNG per channel `train/<Id>_<red|green|blue|yellow>.png`, no test.csv, `sample_submission.csv` =
    `Id,Predicted` listing the test ids (test images under `test/`), `solution.csv` with Kaggle's `Usage`."""
    (train_x, train_y), (test_x, test_y) = _split(n_train, n_test, seed)
    rng = np.random.default_rng(seed)
    for split, images, ids in (("train", train_x, [f"h{i:04d}" for i in range(n_train)]),
                               ("test", test_x, [f"t{i:04d}" for i in range(n_test)])):
        folder = dest / split
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in zip(ids, images):
            noise = rng.integers(0, 40, image.shape, dtype=np.uint8)
            for channel, plane in zip(("red", "green", "blue", "yellow"), (noise, image, noise // 2, 255 - image)):
                Image.fromarray(plane).save(folder / f"{i}_{channel}.png")
    train_ids, test_ids = [f"h{i:04d}" for i in range(n_train)], [f"t{i:04d}" for i in range(n_test)]
    join = lambda labels: " ".join(map(str, labels))  # noqa: E731
    pd.DataFrame({"Id": train_ids, "Target": [join(y) for y in train_y]}).to_csv(dest / "train.csv", index=False)
    pd.DataFrame({"Id": test_ids, "Predicted": "0"}).to_csv(dest / "sample_submission.csv", index=False)
    usage = ["Public" if k % 3 else "Private" for k in range(n_test)]
    pd.DataFrame({"Id": test_ids, "Target": [join(y) for y in test_y], "Usage": usage}).to_csv(
        dest / "solution.csv", index=False)
    return dest


def imet_competition(dest: Path, n_train: int = 80, n_test: int = 24, seed: int = 1) -> Path:
    """iMet style: `train.csv` = `id,attribute_ids` (space-separated integer ids), RGB PNGs under `train/`
    and `test/`, no test.csv, `sample_submission.csv` = `id,attribute_ids`."""
    (train_x, train_y), (test_x, test_y) = _split(n_train, n_test, seed)
    train_ids, test_ids = [f"{i:05x}a" for i in range(n_train)], [f"{i:05x}b" for i in range(n_test)]
    write_images(dest / "train", train_ids, np.stack([train_x] * 3, axis=-1))
    write_images(dest / "test", test_ids, np.stack([test_x] * 3, axis=-1))
    ids = lambda labels: " ".join(str(100 + v) for v in labels)  # noqa: E731  attribute ids, not 0..C-1
    pd.DataFrame({"id": train_ids, "attribute_ids": [ids(y) for y in train_y]}).to_csv(dest / "train.csv", index=False)
    pd.DataFrame({"id": test_ids, "attribute_ids": "100 101"}).to_csv(dest / "sample_submission.csv", index=False)
    pd.DataFrame({"id": test_ids, "attribute_ids": [ids(y) for y in test_y]}).to_csv(dest / "solution.csv", index=False)
    return dest


PLANET_WORDS = ["agriculture", "bare_ground", "clear", "cloudy", "haze", "primary", "road", "water",
                "habitation", "cultivation"]


def planet_competition(dest: Path, n_train: int = 80, n_test: int = 24, seed: int = 2) -> Path:
    """Planet style: `train_v2.csv`-like `train.csv` = `image_name,tags` (space-separated words), JPEGs under
    `train-jpg/` and `test-jpg/`, `test.csv` = `image_name`, `sample_submission.csv` = `image_name,tags`."""
    (train_x, train_y), (test_x, test_y) = _split(n_train, n_test, seed)
    train_ids, test_ids = [f"train_{i}" for i in range(n_train)], [f"test_{i}" for i in range(n_test)]
    colour = lambda x: np.stack([x, x // 2 + 64, 255 - x], axis=-1)  # noqa: E731
    write_images(dest / "train-jpg", train_ids, colour(train_x), ext="jpg")
    write_images(dest / "test-jpg", test_ids, colour(test_x), ext="jpg")
    words = lambda labels: " ".join(PLANET_WORDS[v] for v in labels)  # noqa: E731
    pd.DataFrame({"image_name": train_ids, "tags": [words(y) for y in train_y]}).to_csv(dest / "train.csv", index=False)
    pd.DataFrame({"image_name": test_ids}).to_csv(dest / "test.csv", index=False)
    pd.DataFrame({"image_name": test_ids, "tags": "clear primary"}).to_csv(dest / "sample_submission.csv",
                                                                            index=False)
    pd.DataFrame({"image_name": test_ids, "tags": [words(y) for y in test_y]}).to_csv(dest / "solution.csv",
                                                                                     index=False)
    return dest


def image_folder_competition(dest: Path, n_train: int = 120, n_test: int = 30, seed: int = 3) -> Path:
    """ImageFolder multi-class: `train/<class>/<file>.png` (no train.csv), a flat `test/`, and a
    `sample_submission.csv` = `id,label` whose id order is not the folder's."""
    images, target = digit_images(32)
    train_rows = pick_rows(target, n_train, seed)
    test_rows = pick_rows(target, n_test, seed + 1, exclude=train_rows)
    for row in train_rows:
        folder = dest / "train" / DIGIT_NAMES[target[row]]
        write_images(folder, [f"img{row:04d}"], images[row][None])
    test_ids = [f"img{row:04d}" for row in test_rows]
    write_images(dest / "test", test_ids, images[test_rows])
    order = np.random.default_rng(seed).permutation(len(test_ids))
    pd.DataFrame({"id": [test_ids[k] for k in order], "label": "zero"}).to_csv(dest / "sample_submission.csv",
                                                                             index=False)
    pd.DataFrame({"id": test_ids, "label": [DIGIT_NAMES[t] for t in target[test_rows]]}).to_csv(
        dest / "solution.csv", index=False)
    return dest

"""Competitions with planted problems for the kit.audit tests, built in tmp from the embedded bccd photos
(and one scikit-learn digit as an image from another domain)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from competitions import digit_images
from PIL import Image

from kit.data import EMBEDDED_DATA

# planted near/exact copies in train: (copy id, id of the original's row index, how it was made)
EXACT, QUALITY, RESIZED, CONFLICT = "copy_png", "copy_q60", "copy_resized", "copy_conflict"
LEAK = "leak_test"                  # a test image that is a train image
OUTLIERS = ("blank", "inverted", "digit")


def _rows(n_train: int, n_test: int):
    train = pd.read_csv(EMBEDDED_DATA / "train.csv", dtype=str, keep_default_na=False)
    test = pd.read_csv(EMBEDDED_DATA / "test.csv", dtype=str, keep_default_na=False)
    return train.iloc[:n_train].reset_index(drop=True), test.iloc[:n_test].reset_index(drop=True)


def _photo(i: str) -> Image.Image:
    return Image.open(EMBEDDED_DATA / "images" / f"{i}.jpg").convert("RGB")


def _link(folder: Path, ids) -> None:
    for i in ids:
        (folder / f"{i}.jpg").symlink_to(EMBEDDED_DATA / "images" / f"{i}.jpg")


def planted_competition(dest: Path, n_train: int = 90, n_test: int = 30) -> tuple[Path, dict]:
    """bccd's first rows plus: a lossless PNG copy (exact), a JPEG re-encoded at quality 60 and a copy
    resized by 6% (near), an exact copy with other labels (conflict), a test image that is a train image
    (leak), and three outliers (a blank image, an inverted photo, a digit scan). Returns (folder, the
    planted pairs as {copy id: original id} and the originals' labels)."""
    train, test = _rows(n_train, n_test)
    images = dest / "images"
    images.mkdir(parents=True)
    _link(images, [*train["id"], *test["id"]])
    originals = dict(zip((EXACT, QUALITY, RESIZED, CONFLICT, LEAK), train["id"][:5]))
    source = {k: _photo(v) for k, v in originals.items()}
    source[EXACT].save(images / f"{EXACT}.png")
    source[QUALITY].save(images / f"{QUALITY}.jpg", quality=60)
    w, h = source[RESIZED].size
    source[RESIZED].resize((int(w * 0.94), int(h * 0.94)), Image.Resampling.LANCZOS).save(
        images / f"{RESIZED}.jpg", quality=95)
    source[CONFLICT].save(images / f"{CONFLICT}.png")
    source[LEAK].save(images / f"{LEAK}.png")
    Image.new("RGB", (w, h), (128, 128, 128)).save(images / "blank.png")
    Image.fromarray(255 - np.asarray(_photo(train["id"][5]))).save(images / "inverted.png")
    digit = digit_images(32)[0][0]
    Image.fromarray(digit).resize((w, h), Image.Resampling.NEAREST).save(images / "digit.png")

    label_of = dict(zip(train["id"], train["labels"]))
    conflict = "RBC Platelets" if label_of[originals[CONFLICT]] != "RBC Platelets" else "RBC WBC"
    extra = [(EXACT, label_of[originals[EXACT]]), (QUALITY, label_of[originals[QUALITY]]),
             (RESIZED, label_of[originals[RESIZED]]), (CONFLICT, conflict),
             *[(o, label_of[train["id"][6]]) for o in OUTLIERS]]
    pd.concat([train, pd.DataFrame(extra, columns=["id", "labels"])]).to_csv(dest / "train.csv", index=False)
    pd.DataFrame({"id": [*test["id"], LEAK]}).to_csv(dest / "test.csv", index=False)
    return dest, originals


def split_competition(dest: Path, n_train: int = 110, n_test: int = 60, shifted: bool = False,
                      seed: int = 0) -> Path:
    """bccd train photos split at random into train and test (no shift by construction); `shifted`
    darkens and tints the test images (a different stain or camera)."""
    rows = pd.read_csv(EMBEDDED_DATA / "train.csv", dtype=str, keep_default_na=False)
    order = np.random.default_rng(seed).permutation(len(rows))
    train, test = rows.iloc[order[:n_train]], rows.iloc[order[n_train:n_train + n_test]]
    images = dest / "images"
    images.mkdir(parents=True)
    _link(images, train["id"])
    if shifted:
        for i in test["id"]:
            pixels = np.asarray(_photo(i), dtype=np.float32) * np.array([0.55, 0.6, 0.75])
            Image.fromarray(pixels.astype(np.uint8)).save(images / f"{i}.jpg", quality=90)
    else:
        _link(images, test["id"])
    train.to_csv(dest / "train.csv", index=False)
    test[["id"]].to_csv(dest / "test.csv", index=False)
    return dest

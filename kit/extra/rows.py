"""A fold's training rows when they are more than its own labelled rows: the fold's rows (hard labels, or
labels mixed with a teacher's soft targets), pseudo-labelled test rows, external rows; each part with its own
image array, targets and loss weight. Only ever training rows: validation and the OOF never see them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from kit.loader import CachedImages

MULTILABEL = "multilabel"


@dataclass
class ExtraPart:
    """Rows of `images` that join a fold's training with these targets and this loss weight."""
    name: str                  # "pseudo" or "extra-data" (for messages)
    images: np.ndarray         # (N, S, S, ch) uint8 cache
    rows: np.ndarray           # indices into `images`
    targets: np.ndarray        # (len(rows), C) float32
    weight: float = 1.0
    labels: np.ndarray | None = None   # true 0/1 labels (external data): they count for --balance


@dataclass
class FoldExtra:
    """What a fold trains on beyond its plain rows (see kit.extra.plan.fold_extra)."""
    train_targets: np.ndarray | None               # (n_train_rows, C): labels mixed with a teacher, else None
    parts: list[ExtraPart] = field(default_factory=list)
    soft: bool = False        # some targets are not 0/1: label smoothing was applied to the hard ones already
    summary: dict = field(default_factory=dict)    # rows per part, for the log and the fold's record


def smooth(Y: np.ndarray, amount: float, task: str) -> np.ndarray:
    """Label smoothing as kit.losses applies it: toward 0.5 (multi-label), toward uniform (multi-class,
    torch's definition)."""
    if amount == 0:
        return Y
    return Y * (1 - amount) + (0.5 if task == MULTILABEL else 1 / Y.shape[1]) * amount


def hard_targets(P: np.ndarray, task: str) -> np.ndarray:
    """0/1 targets: p >= 0.5 per label (multi-label), the argmax one-hot (multi-class)."""
    if task == MULTILABEL:
        return (P >= 0.5).astype(np.float64)
    return np.eye(P.shape[1])[P.argmax(axis=1)]


def confidence(P: np.ndarray, task: str) -> np.ndarray:
    """Per row: the top probability (multi-class); the least confident label's max(p, 1 - p) (multi-label)."""
    return P.max(axis=1) if task != MULTILABEL else np.maximum(P, 1 - P).min(axis=1)


class TrainingRows(Dataset):
    """Several (images, rows, targets, weight) parts as one dataset of (image, target, weight) items; item
    `i` with its augmentation seed, as `kit.loader.EpochSampler` yields them."""

    def __init__(self, parts: list[ExtraPart], augmentation=None):
        self.parts = [CachedImages(p.images, p.rows, p.targets.astype(np.float32), augmentation) for p in parts]
        self.weights = [torch.tensor(float(p.weight)) for p in parts]
        self.starts = np.cumsum([0] + [len(p.rows) for p in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, item):
        i, seed = item if isinstance(item, tuple) else (item, 0)
        part = int(np.searchsorted(self.starts, i, side="right")) - 1
        image, target = self.parts[part][(i - int(self.starts[part]), seed)]
        return image, target, self.weights[part]


def training_set(data, label_smoothing: float, augmentation) -> tuple[Dataset, np.ndarray, float]:
    """(dataset, 0/1 labels the balancer is built from, label smoothing the loss still applies) of a fold.

    Without extra rows: the fold's own rows exactly as before. With them: the fold's rows first, then each
    part; the balancer sees the rows with true labels; targets already smoothed when some are soft."""
    own = data.Y[data.train_rows]
    extra = getattr(data, "extra", None)
    if extra is None:
        return CachedImages(data.images, data.train_rows, own.astype(np.float32), augmentation), own, label_smoothing
    targets = own if extra.train_targets is None else extra.train_targets
    parts = [ExtraPart("train", data.images, data.train_rows, targets, 1.0, own), *extra.parts]
    labelled = np.concatenate([own, *[p.labels for p in extra.parts if p.labels is not None]])
    return TrainingRows(parts, augmentation), labelled, 0.0 if extra.soft else label_smoothing

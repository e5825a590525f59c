"""What the audit looks at: the competition read exactly as kit.cv reads it (`kit.crossval.load_data`, the
same flags), every train and test image decoded through the kit's cache at a small thumbnail size, and the
facts of each file's header (size, bands)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.cache import cached_images
from kit.config import TrainConfig
from kit.data import Competition
from kit.audit.hashes import file_facts

TRAIN, TEST = "train", "test"


@dataclass
class AuditData:
    comp: Competition
    ids: np.ndarray          # train ids then test ids
    split: np.ndarray        # "train" / "test" per row
    sources: list            # image file (or tuple of channel files) per row
    thumbs: np.ndarray       # (N, s, s, in_chans) uint8, the cached pixels
    facts: np.ndarray        # (N, 3) int: width, height, bands of the file
    labels: list[str]        # the given labels per row as text ("" for test rows)

    @property
    def n_train(self) -> int:
        return len(self.comp.train_ids)

    @property
    def has_test(self) -> bool:
        return len(self.ids) > self.n_train

    def rgb(self, row: int) -> np.ndarray:
        """A row's thumbnail for display: 3 channels (gray repeated, extra channels dropped)."""
        image = np.asarray(self.thumbs[row])
        return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def label_text(comp: Competition) -> list[str]:
    return [" ".join(c for c, v in zip(comp.classes, row) if v) or "(none)" for row in np.asarray(comp.Y)]


def load_audit_data(cfg: TrainConfig, comp: Competition, thumb_size: int, log=print) -> AuditData:
    test_ids = list(comp.test_ids) if comp.test_paths else []
    sources = list(comp.train_paths) + (list(comp.test_paths) if comp.test_paths else [])
    ids = np.array([*map(str, comp.train_ids), *map(str, test_ids)])
    split = np.array([TRAIN] * len(comp.train_ids) + [TEST] * len(test_ids))
    train = cached_images(comp.train_paths, thumb_size, cfg.cache_dir, cfg.input_channels, comp.train_ids,
                          where=str(comp.train_source), log=log)
    parts = [np.asarray(train)]
    if test_ids:
        parts.append(np.asarray(cached_images(comp.test_paths, thumb_size, cfg.cache_dir, cfg.input_channels,
                                              comp.test_ids, where=str(comp.test_source), log=log)))
    facts = np.array([file_facts(s) for s in sources], dtype=np.int64)
    return AuditData(comp, ids, split, sources, np.concatenate(parts), facts,
                     label_text(comp) + [""] * len(test_ids))

"""From cached uint8 images to device batches: augmentation, deterministic sampling, normalisation.

Every random choice is derived from (seed, fold, epoch, position), never from a process-global RNG, so a
run resumed after a crash, or run with a different number of workers, sees exactly the same batches.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def item_seed(seed: int, fold: int, epoch: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, fold, epoch, position]).generate_state(1)[0])


class EpochSampler(Sampler):
    """Yields (row, augmentation seed) pairs; the order is a pure function of (seed, fold, epoch).

    `row_weights` switches to weighted sampling with replacement (the `sampler` balance method); `rank` and
    `world` give a data-parallel process its share of the same global order."""

    def __init__(self, n: int, seed: int, fold: int, shuffle: bool, row_weights: np.ndarray | None = None,
                 rank: int = 0, world: int = 1):
        self.n, self.seed, self.fold, self.shuffle = n, seed, fold, shuffle
        self.row_weights = None if row_weights is None else row_weights / row_weights.sum()
        self.rank, self.world = rank, world
        self.epoch = 0
        self.size = n  # items of the global order per epoch (kit.sampling's rare batches: whole batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.world)

    def global_order(self, rng: np.random.Generator) -> np.ndarray:
        """The epoch's rows before the data-parallel split (`size` of them)."""
        if self.row_weights is not None:
            return rng.choice(self.n, size=self.n, replace=True, p=self.row_weights)
        return rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.fold, self.epoch])
        order = self.global_order(rng)
        seeds = rng.integers(0, 2**31 - 1, size=self.size)
        if self.world > 1:  # data-parallel: the same global order, every world-th item, padded to equal shares
            pad = len(self) * self.world - self.size
            order, seeds = np.concatenate([order, order[:pad]]), np.concatenate([seeds, seeds[:pad]])
            order, seeds = order[self.rank::self.world], seeds[self.rank::self.world]
        return iter(zip(order.tolist(), seeds.tolist()))


class CachedImages(Dataset):
    """Rows of a cached image array, optionally augmented (an albumentations pipeline, kit.augment), with
    their label vectors; without labels an item is (image, row index). Indexing one row at a time keeps a
    memory-mapped cache on disk: only the batch in flight is in RAM."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, targets: np.ndarray | None,
                 augmentation=None):
        self.images, self.rows, self.targets, self.augmentation = images, rows, targets, augmentation

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        i, seed = item if isinstance(item, tuple) else (item, 0)
        image = np.array(self.images[self.rows[i]])  # a private, writable copy of the cached pixels
        if self.augmentation is not None:
            self.augmentation.set_random_seed(seed)
            image = self.augmentation(image=image)["image"]
        image = torch.from_numpy(np.ascontiguousarray(image))
        if self.targets is None:
            return image, i
        return image, torch.from_numpy(self.targets[i])


def make_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None, num_workers: int,
                pin_memory: bool, drop_last: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      num_workers=num_workers, pin_memory=pin_memory, drop_last=drop_last,
                      persistent_workers=num_workers > 0)


def to_model_input(images: torch.Tensor, device: torch.device, mean: torch.Tensor, std: torch.Tensor,
                   channels_last: bool) -> torch.Tensor:
    """uint8 NHWC batch -> normalised float NCHW on the device. Moving uint8 is 4x less traffic than floats,
    and NHWC permuted to NCHW is already channels_last in memory."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

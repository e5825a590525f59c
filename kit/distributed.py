"""Data-parallel training of one fold: `torchrun --nproc_per_node N -m kit.cv ...`.

torchrun starts N processes with RANK / WORLD_SIZE / LOCAL_RANK set; each joins one process group (NCCL on
GPUs, gloo on CPUs), trains on its share of every batch (the global batch stays `--batch-size`), and the
gradients are averaged by DistributedDataParallel. Rank 0 alone validates the data, builds the caches,
claims and writes the run; validation and test predictions are computed on a share of the rows per rank and
gathered, so every rank sees the same scores and stays in step for early stopping.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def current() -> Dist:
    """This process's place in the group (a single process when torch.distributed is not initialised)."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return Dist()
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(device: str | None) -> tuple[Dist, str | None]:
    """Join the group torchrun describes (if any); returns (dist, the device this rank trains on)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist(), device
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if cuda else "gloo")
    dist = current()
    if cuda:
        torch.cuda.set_device(dist.local_rank)
        return dist, f"cuda:{dist.local_rank}"
    return dist, "cpu"


def main_first(dist: Dist, work):
    """Rank 0 runs `work()` first (it may write: caches, folds, the run folder), then the other ranks run it
    (reading what rank 0 wrote). An error on rank 0 is raised on every rank instead of a hang."""
    if not dist.active:
        return work()
    outcome = [None]
    if dist.main:
        try:
            result = work()
        except Exception as err:  # every rank must leave the barrier, with the same error
            outcome = [f"{type(err).__name__}: {err}"]
            torch_dist.broadcast_object_list(outcome, src=0)
            raise
        torch_dist.broadcast_object_list(outcome, src=0)
        return result
    torch_dist.broadcast_object_list(outcome, src=0)
    if outcome[0] is not None:
        raise RuntimeError(f"rank 0 failed: {outcome[0]}")
    return work()


def barrier(dist: Dist) -> None:
    if dist.active:
        torch_dist.barrier()


def share(rows: np.ndarray, dist: Dist) -> np.ndarray:
    """This rank's rows: every world-th one, starting at the rank."""
    return rows[dist.rank::dist.world]


def gather_rows(part: np.ndarray, n: int, dist: Dist) -> np.ndarray:
    """The (n, C) array whose rows `share`d out to the ranks came back as `part`s, in the original order."""
    if not dist.active:
        return part
    parts = [None] * dist.world
    torch_dist.all_gather_object(parts, part)
    out = np.empty((n, part.shape[1]), dtype=part.dtype)
    for rank, piece in enumerate(parts):
        out[rank::dist.world] = piece
    return out

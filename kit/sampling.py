"""Which training rows make up a batch: weighted draws (`--balance sampler`) and rare-label-aware batches
(`--batch-sampler rare`).

The rare sampler exists for selective learning (kit.balance), which balances each batch on its own: a label
with fewer than one positive per batch is absent from most batches, so there is nothing to balance and the
positives' weight is lost. `RareBatchSampler` takes the plain shuffle of an epoch, cuts it into batches and
tops each batch up to `per_batch` positives of every rare label (fewer than `per_batch` per batch on average)
by replacing rows that hold no protected positive. Rare positives are thus seen more often (oversampled) and
a few rows of the shuffle sit the epoch out; the rest of each batch is the plain shuffle. Everything is drawn
from (seed, fold, epoch), so a resumed run sees the same batches, and the data-parallel split of
`EpochSampler` applies to the composed global order (every rank's batch i together is global batch i).
"""
from __future__ import annotations

import numpy as np

from kit.balance import BalanceError, _label_matrix
from kit.loader import EpochSampler


def sampler_weights(Y_train: np.ndarray, task: str) -> np.ndarray:
    """Row weights (n,) for `WeightedRandomSampler(weights, num_samples, replacement=True)`.

    Multi-class: 1 / count of the row's class, so every present class is drawn equally often in expectation.
    Multi-label: the largest 1 / count over the row's positive labels (a row carrying a rare label is drawn
    as often as that label needs); rows with no positive get 1 / count of the most common label.
    """
    Y = _label_matrix(Y_train, task)
    counts = Y.sum(axis=0)
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    weights = (Y * inverse).max(axis=1)
    empty = Y.sum(axis=1) == 0
    weights[empty] = 1 / counts.max() if counts.max() > 0 else 1.0
    return weights


def rare_labels(Y: np.ndarray, block: int, per_batch: int) -> np.ndarray:
    """Indices of the labels a plain shuffle gives fewer than `per_batch` positives per batch of `block`
    rows on average (labels with no positive excluded), rarest first."""
    counts = (np.asarray(Y) >= 0.5).sum(axis=0)
    rare = np.flatnonzero((counts > 0) & (counts * block < per_batch * len(Y)))
    return rare[np.argsort(counts[rare], kind="stable")]


def rare_demand(Y: np.ndarray, block: int, per_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(rare labels, rows each needs in every batch): per_batch, or all its positives when it has fewer."""
    rare = rare_labels(Y, block, per_batch)
    return rare, np.minimum(per_batch, (np.asarray(Y)[:, rare] >= 0.5).sum(axis=0))


def check_rare_batches(Y: np.ndarray, block: int, per_batch: int, source: str = "train labels") -> None:
    """Fail before any training when the rare labels would need more than half of every batch."""
    rare, need = rare_demand(Y, block, per_batch)
    if len(Y) > block and need.sum() > block // 2:
        raise BalanceError(
            f"{source}: --batch-sampler rare with --rare-per-batch {per_batch} needs {int(need.sum())} rows of "
            f"every batch of {block} for {len(rare)} rare labels (at most half a batch, {block // 2}, is "
            f"topped up); lower --rare-per-batch or raise --batch-size")


class _Pool:
    """One label's positives drawn in turn, each pass over them in a new random order."""

    def __init__(self, rows: np.ndarray, rng: np.random.Generator):
        self.rows, self.rng, self.queue = rows, rng, []

    def draw(self, exclude: set) -> int:
        while True:
            if not self.queue:
                self.queue = self.rng.permutation(self.rows).tolist()[::-1]
            row = self.queue.pop()
            if row not in exclude:
                return row


def compose_rare_batches(order: np.ndarray, positive: np.ndarray, labels: np.ndarray, need: np.ndarray,
                         block: int, rng: np.random.Generator) -> np.ndarray:
    """`order` cut into whole batches of `block` rows (a last partial batch is dropped, as the loader does;
    fewer rows than a batch: `order` as it is), each holding `need[j]` positives of `labels[j]`.

    Labels are served in the given order (rarest first). A batch's positives of a label that are already
    there count and are protected; the missing ones replace the batch's last unprotected rows, each a
    positive of that label not yet in the batch, drawn from the label's pool in turn."""
    if len(order) <= block:
        return order.copy()
    out = order[: len(order) // block * block].copy()
    pools = [_Pool(np.flatnonzero(positive[:, c]), rng) for c in labels]
    for start in range(0, len(out), block):
        rows = out[start:start + block]  # a view: edits land in `out`
        protected = np.zeros(block, dtype=bool)
        for c, k, pool in zip(labels, need, pools):
            have = np.flatnonzero(positive[rows, c])
            have = have[np.argsort(~protected[have], kind="stable")][:k]  # already protected ones first
            protected[have] = True
            missing = k - len(have)
            if missing:
                slots = np.flatnonzero(~protected)[-missing:]
                if len(slots) < missing:
                    raise BalanceError(f"rare labels need more than a batch of {block} rows")
                members = set(rows.tolist())
                for slot in slots:
                    rows[slot] = pool.draw(members)
                    members.add(int(rows[slot]))
                protected[slots] = True
    return out


class RareBatchSampler(EpochSampler):
    """`EpochSampler` whose global order is made of whole batches of `block` rows (the global batch: the
    per-process batch x world), each holding `per_batch` positives of every rare label of `Y_train`
    (rarest first while they fit in half a batch; the others are left to the shuffle and listed in
    `left_out`). Its length is a whole number of batches, so an epoch has n // block batches."""

    def __init__(self, Y_train: np.ndarray, block: int, per_batch: int, seed: int, fold: int,
                 rank: int = 0, world: int = 1):
        if block < 1 or per_batch < 1 or block % world:
            raise BalanceError(f"need block >= 1, per_batch >= 1 and block a multiple of world; got block "
                               f"{block}, per_batch {per_batch}, world {world}")
        super().__init__(len(Y_train), seed, fold, shuffle=True, rank=rank, world=world)
        self.positive = np.asarray(Y_train) >= 0.5
        self.block, self.per_batch = block, per_batch
        rare, need = rare_demand(Y_train, block, per_batch)
        fits = np.cumsum(need) <= block // 2
        self.labels, self.need, self.left_out = rare[fits], need[fits], rare[~fits]
        self.size = self.n // block * block if self.n > block else self.n

    def global_order(self, rng: np.random.Generator) -> np.ndarray:
        return compose_rare_batches(rng.permutation(self.n), self.positive, self.labels, self.need,
                                    self.block, rng)


def train_sampler(kind: str, Y_own: np.ndarray, n_rows: int, block: int, per_batch: int, seed: int, fold: int,
                  row_weights: np.ndarray | None = None, rank: int = 0, world: int = 1, log=print) -> EpochSampler:
    """The sampler of a fold's `n_rows` training rows: "plain" (the shuffle, or weighted draws given
    `row_weights`) or "rare" (`RareBatchSampler` on the labels `Y_own` of the first rows; rows after them,
    e.g. pseudo-labelled ones, count as holding no positive)."""
    if kind == "plain":
        return EpochSampler(n_rows, seed, fold, shuffle=True, row_weights=row_weights, rank=rank, world=world)
    if kind != "rare":
        raise BalanceError(f"unknown batch sampler {kind!r}; choose plain or rare")
    if row_weights is not None:
        raise BalanceError("the rare batch sampler does not take row weights (--balance sampler)")
    Y = np.zeros((n_rows, Y_own.shape[1]))
    Y[: len(Y_own)] = Y_own
    sampler = RareBatchSampler(Y, block, per_batch, seed, fold, rank=rank, world=world)
    log(f"fold {fold}: rare batch sampler: {per_batch} positives of labels {sampler.labels.tolist()} in every "
        f"batch of {block}" + (f"; labels {sampler.left_out.tolist()} left to the shuffle (over half a batch)"
                               if len(sampler.left_out) else ""))
    return sampler

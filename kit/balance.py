"""Class-imbalance handling for the training loop: selective learning and the usual baselines.

Methods (`BALANCE_METHODS`):
- "none": plain loss.
- "class-weight": fixed loss weights from the fold's training labels (`class_weights`).
- "sampler": `WeightedRandomSampler` row weights (`kit.sampling.sampler_weights`).
- "selective": per-batch loss weights (`selective_weights`, `selective_weights_multiclass`), after
  Hand, Castillo & Chellappa, "Doing the Best We Can With What We Have: Multi-Label Balancing With
  Selective Learning for Attribute Prediction", AAAI 2018: per label and per batch, randomly chosen entries
  of the over-represented side get weight 0 (no gradient) and the kept ones are weighted so the batch matches
  the desired label distribution. Only the paper's abstract and summaries were available, so the exact
  counts and weights below are this module's own definition:
  * keep every entry of the under-represented side and the fewest (>= 1) randomly chosen entries of the
    over-represented side that reach the target rate (`ceil`);
  * weight the kept entries so the positive share of the label's weight is exactly the target and the
    label's total weight is exactly B, so `(loss_per_element * W).mean()` has the scale of a plain mean.
  Weights are computed from hard 0/1 labels (apply label smoothing / mixup after, not before).

Everything here is pure: tensors/arrays in, tensors/arrays out, randomness only from an explicit
`torch.Generator` (None = torch's global generator).
"""
from __future__ import annotations

import numpy as np
import torch

from kit.metrics import MULTICLASS, MULTILABEL

BALANCE_METHODS = ("none", "class-weight", "sampler", "selective")
TASKS = (MULTILABEL, MULTICLASS)
_TOL = 1e-9  # keeps ceil(3.0000000000000004) == 3 in the kept counts


class BalanceError(ValueError):
    """Bad input to a balancing function."""


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise BalanceError(f"unknown task {task!r}; choose from {TASKS}")


def _label_matrix(Y_train: np.ndarray, task: str) -> np.ndarray:
    """Validated (n, C) 0/1 training label matrix (one-hot rows for multi-class)."""
    _check_task(task)
    Y = np.asarray(Y_train)
    if Y.ndim != 2 or len(Y) == 0:
        raise BalanceError(f"Y_train must be a non-empty (n, C) 0/1 matrix, got shape {Y.shape}")
    bad = ~np.isin(Y, (0, 1))
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise BalanceError(f"Y_train must hold only 0/1; row {row} is {Y[row].tolist()}")
    if task == MULTICLASS and (Y.sum(axis=1) != 1).any():
        row = int(np.flatnonzero(Y.sum(axis=1) != 1)[0])
        raise BalanceError(f"multi-class Y_train rows must be one-hot; row {row} is {Y[row].tolist()}")
    return Y.astype(np.float64)


def target_rates(Y_train: np.ndarray, target: str | float, task: str) -> np.ndarray:
    """Per-class target rate for selective learning, from the fold's (n, C) 0/1 training labels.

    Multi-label: the wanted positive rate of each label; multi-class: each class's wanted share of a batch.
    "uniform" -> 0.5 per label / equal shares; "train" -> the training prevalence; a number a in [0, 1] ->
    a * uniform + (1 - a) * train (a = 0.5 moves half way from the natural rate to balance).
    Labels whose training rate is 0 or 1 keep it as their target (no reweighting: a batch can never hold
    both of their sides); multi-class shares are renormalised to sum 1 (absent classes get 0).
    """
    Y = _label_matrix(Y_train, task)
    named = {"uniform": 1.0, "train": 0.0}
    try:
        a = named[target] if isinstance(target, str) and target in named else float(target)
    except (TypeError, ValueError):
        raise BalanceError(f"target must be 'uniform', 'train' or a number in [0, 1], got {target!r}") from None
    if not 0 <= a <= 1:
        raise BalanceError(f"a numeric target is the weight of 'uniform' and must be in [0, 1], got {target}")
    prevalence = Y.mean(axis=0)
    present = prevalence > 0
    if task == MULTICLASS:
        uniform = present / present.sum()
    else:
        uniform = np.where(present & (prevalence < 1), 0.5, prevalence)
    rates = a * uniform + (1 - a) * prevalence
    return rates / rates.sum() if task == MULTICLASS else rates


def _home(generator: torch.Generator | None) -> torch.device:
    """Draw on the generator's own device, then move: a CPU generator works for CUDA batches."""
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(shape: tuple, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_home(generator)).to(device)


def _rank_in_sorted(keys: torch.Tensor) -> torch.Tensor:
    """Position of every entry after sorting `keys` along dim 0."""
    order = torch.argsort(keys, dim=0)
    positions = torch.arange(keys.shape[0], device=keys.device).reshape(-1, *[1] * (keys.dim() - 1))
    return torch.empty_like(order).scatter_(0, order, positions.expand_as(order))


def selective_weights(Y: torch.Tensor, target: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C) float32 weights for the per-element BCE of a multi-label batch Y (B, C) of 0/1.

    For each label c with target t in (0, 1) and both positives (p) and negatives (n) in the batch: if
    p / B > t, keep ceil(t n / (1 - t)) random positives and every negative, else ceil((1 - t) p / t)
    random negatives and every positive; dropped entries get 0, kept positives t B / k_pos each and kept
    negatives (1 - t) B / k_neg each, so the positive share of the weight is t and the total is B.
    Any other label (no positive or no negative in the batch, t == 0 or t == 1) keeps weight 1 everywhere.
    """
    if Y.dim() != 2:
        raise BalanceError(f"Y must be (B, C), got shape {tuple(Y.shape)}")
    if ((Y != 0) & (Y != 1)).any():
        raise BalanceError("selective_weights needs hard 0/1 labels (weight before smoothing or mixup)")
    B, C = Y.shape
    t = torch.as_tensor(target, dtype=torch.float64, device=Y.device)
    if t.shape != (C,):
        raise BalanceError(f"target must have one rate per label ({C}), got shape {tuple(t.shape)}")
    if ((t < 0) | (t > 1)).any():
        raise BalanceError(f"target rates must be in [0, 1], got {t.tolist()}")
    positive = Y > 0.5
    n_pos = positive.sum(0).to(torch.float64)
    n_neg = B - n_pos
    active = (n_pos > 0) & (n_neg > 0) & (t > 0) & (t < 1)
    t = torch.where(active, t, torch.full_like(t, 0.5))  # inactive labels: any safe value, result unused
    # The under-represented side's formula exceeds its count and is capped: it keeps everything.
    k_pos = torch.minimum(n_pos, torch.ceil(t * n_neg / (1 - t) - _TOL)).clamp(min=1)
    k_neg = torch.minimum(n_neg, torch.ceil((1 - t) * n_pos / t - _TOL)).clamp(min=1)
    # Positives sort first (keys in [0, 1)), negatives after (keys in [1, 2)), each side in random order.
    rank = _rank_in_sorted(_uniform((B, C), generator, Y.device) + (~positive).float())
    keep = torch.where(positive, rank < k_pos, rank - n_pos < k_neg)
    weight = torch.where(positive, t * B / k_pos, (1 - t) * B / k_neg)
    W = torch.where(keep, weight, torch.zeros_like(weight))
    return torch.where(active, W, torch.ones_like(W)).float()


def selective_weights_multiclass(y: torch.Tensor, target: torch.Tensor,
                                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,) float32 weights for the per-sample CE of a multi-class batch y (B,) of class indices.

    The balanced classes are those present in the batch with a target share > 0; their shares are
    renormalised to sum 1 and they share the mass M = B - (rows of other classes, which keep weight 1).
    With s = min over balanced classes of count / share (the largest mass every class can fill), class c
    keeps min(count, ceil(s * share)) random rows (>= 1), each weighted share * M / kept, the rest get 0:
    the rarest class relative to its target keeps every row, each class's share of M is exactly its target.
    """
    C = len(target)
    if y.dim() != 1 or y.is_floating_point():
        raise BalanceError(f"y must be a (B,) integer tensor of class indices, got {y.dtype} {tuple(y.shape)}")
    if len(y) and (y.min() < 0 or y.max() >= C):
        raise BalanceError(f"class indices must be in [0, {C}), got {y.min().item()}..{y.max().item()}")
    t = torch.as_tensor(target, dtype=torch.float64, device=y.device)
    if (t < 0).any():
        raise BalanceError(f"target shares must be >= 0, got {t.tolist()}")
    counts = torch.bincount(y, minlength=C).to(torch.float64)
    balanced = (counts > 0) & (t > 0)
    share = torch.where(balanced, t, torch.zeros_like(t))
    share = share / share.sum().clamp(min=torch.finfo(share.dtype).tiny)
    mass = (counts * balanced).sum()
    inf = torch.full_like(t, float("inf"))
    scale = torch.where(balanced, counts / share, inf).min()
    kept = torch.where(balanced, torch.minimum(counts, torch.ceil(scale * share - _TOL)).clamp(min=1), counts)
    class_weight = torch.where(balanced, share * mass / kept, torch.ones_like(t))
    # Rank of each row inside its class: sort by class index + random fraction.
    rank = _rank_in_sorted(y.to(torch.float64) + _uniform(y.shape, generator, y.device).double())
    first_of_class = torch.cumsum(counts, 0) - counts
    keep = (rank - first_of_class[y]) < kept[y]
    return torch.where(keep, class_weight[y], torch.zeros_like(class_weight[y])).float()


def class_weights(Y_train: np.ndarray, task: str, max_weight: float = 100.0) -> torch.Tensor:
    """Fixed loss weights for "class-weight", as a float32 tensor (C,).

    Multi-label: BCE `pos_weight` = n_neg / n_pos per label, clipped to [1 / max_weight, max_weight];
    1 for labels with no positive or no negative. Multi-class: CE `weight` proportional to 1 / count,
    normalised to mean 1 over the classes present; absent classes get 1.
    """
    Y = _label_matrix(Y_train, task)
    n_pos = Y.sum(axis=0)
    n_neg = len(Y) - n_pos
    present = n_pos > 0
    if task == MULTILABEL:
        ratio = np.divide(n_neg, n_pos, out=np.ones_like(n_pos), where=present & (n_neg > 0))
        weights = np.clip(ratio, 1 / max_weight, max_weight)
    else:
        inverse = np.divide(1.0, n_pos, out=np.zeros_like(n_pos), where=present)
        weights = np.where(present, inverse / inverse[present].mean(), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """One Beta(alpha, alpha) draw seeded from the torch generator (torch's Beta takes no generator)."""
    if alpha <= 0:
        raise BalanceError(f"mixup/cutmix alpha must be > 0, got {alpha}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_home(generator)))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _permutation(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randperm(n, generator=generator, device=_home(generator)).to(device)


def mixup_batch(x: torch.Tensor, Y: torch.Tensor, alpha: float,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup: lam ~ Beta(alpha, alpha), x' = lam x + (1 - lam) x[perm], same for the (B, C) soft targets Y
    (multi-class: pass one-hot rows; torch's cross-entropy accepts the mixed probabilities)."""
    lam = _beta(alpha, generator)
    perm = _permutation(len(x), generator, x.device)
    return lam * x + (1 - lam) * x[perm], lam * Y + (1 - lam) * Y[perm]


def cutmix_batch(x: torch.Tensor, Y: torch.Tensor, alpha: float,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix on (B, ch, H, W) images: paste a random box of x[perm] covering about 1 - lam of the image;
    the targets mix by the box's exact area fraction (after clipping to the image)."""
    lam = _beta(alpha, generator)
    perm = _permutation(len(x), generator, x.device)
    H, W = x.shape[-2:]
    cy, cx = (_uniform((2,), generator, torch.device("cpu")) * torch.tensor([H, W])).long().tolist()
    h, w = int(H * np.sqrt(1 - lam)), int(W * np.sqrt(1 - lam))
    y0, y1 = max(cy - h // 2, 0), min(cy + h - h // 2, H)
    x0, x1 = max(cx - w // 2, 0), min(cx + w - w // 2, W)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    kept = 1 - (y1 - y0) * (x1 - x0) / (H * W)
    return mixed, kept * Y + (1 - kept) * Y[perm]


class BatchBalancer:
    """One fold's balancing, built from its training labels Y_train (n, C) of 0/1 (one-hot if multi-class).

    Give `pos_weight` (multi-label) / `class_weight` (multi-class) to the loss, `sampler_weights` to a
    `WeightedRandomSampler`, and multiply the unreduced loss by `loss_weights(...)` before `.mean()`;
    each is None when the method does not use it.
    """

    def __init__(self, method: str, task: str, Y_train: np.ndarray, target: str | float = "uniform"):
        if method not in BALANCE_METHODS:
            raise BalanceError(f"unknown balance method {method!r}; choose from {BALANCE_METHODS}")
        _label_matrix(Y_train, task)
        self.method, self.task = method, task
        self.n_classes = np.asarray(Y_train).shape[1]
        fixed = class_weights(Y_train, task) if method == "class-weight" else None
        self.pos_weight = fixed if task == MULTILABEL else None
        self.class_weight = fixed if task == MULTICLASS else None
        from kit.sampling import sampler_weights  # kit.sampling builds on this module

        self.sampler_weights = sampler_weights(Y_train, task) if method == "sampler" else None
        self.target = (torch.tensor(target_rates(Y_train, target, task), dtype=torch.float64)
                       if method == "selective" else None)

    def loss_weights(self, Y_batch: torch.Tensor, generator: torch.Generator | None = None):
        """Selective: (B, C) weights (multi-label) or (B,) (multi-class; Y_batch as indices or one-hot rows).
        Other methods: None."""
        if self.method != "selective":
            return None
        if self.task == MULTILABEL:
            return selective_weights(Y_batch, self.target, generator)
        y = Y_batch.argmax(dim=1) if Y_batch.dim() == 2 else Y_batch
        return selective_weights_multiclass(y.long(), self.target, generator)

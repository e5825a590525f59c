"""Training losses, per element (multi-label) or per sample (multi-class), so balancing weights multiply in.

    bce    binary cross-entropy (multi-label default)
    ce     cross-entropy on soft targets (multi-class default; soft targets also carry mixup)
    focal  down-weights easy examples by (1 - p_t)^gamma: torchvision's sigmoid_focal_loss for multi-label
           (alpha, gamma at torchvision's defaults), the softmax form for multi-class
    asl    asymmetric loss (Ridnik et al. 2021, timm's AsymmetricLossMultiLabel at timm's defaults):
           focuses negatives harder than positives and clips easy negatives; multi-label only
Label smoothing moves multi-label targets toward 0.5 and multi-class ones toward uniform.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.loss import AsymmetricLossMultiLabel
from torchvision.ops import sigmoid_focal_loss

MULTILABEL, MULTICLASS = "multilabel", "multiclass"
LOSSES = {MULTILABEL: ("bce", "focal", "asl"), MULTICLASS: ("ce", "focal")}
FOCAL_GAMMA = 2.0  # torchvision's default, used for the multi-class form too


def resolve_loss(name: str | None, task: str) -> str:
    """The loss for `task` (None: its default); a loss the task cannot use is a clear error."""
    name = name or LOSSES[task][0]
    if name not in LOSSES[task]:
        raise ValueError(f"loss {name!r} does not fit a {task} task; choose from {LOSSES[task]}")
    return name


def loss_fn(logits, Y, task, label_smoothing, pos_weight=None, class_weight=None, weights=None, loss="auto"):
    """Mean of the per-element / per-sample loss, times `weights` when given (selective learning).
    `pos_weight` (multi-label, per class) scales the positive terms; `class_weight` (multi-class) each class."""
    name = resolve_loss(None if loss == "auto" else loss, task)
    if task == MULTILABEL:
        target = Y * (1 - label_smoothing) + 0.5 * label_smoothing
        if name == "bce":
            per = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
        elif name == "focal":
            per = sigmoid_focal_loss(logits, target, reduction="none")
            per = per if pos_weight is None else per * (1 + (pos_weight - 1) * target)
        else:
            per = AsymmetricLossMultiLabel(reduction="none")(logits, target)
            per = per if pos_weight is None else per * (1 + (pos_weight - 1) * target)
    else:
        per = F.cross_entropy(logits, Y, weight=class_weight, label_smoothing=label_smoothing, reduction="none")
        if name == "focal":  # (1 - p_t)^gamma with p_t the probability given to the (soft) target
            p_t = (torch.softmax(logits, dim=-1) * Y).sum(dim=-1)
            per = per * (1 - p_t).clamp(min=0) ** FOCAL_GAMMA
    return (per if weights is None else per * weights).mean()

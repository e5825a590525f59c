"""Models come from timm (any timm name); this adds local weight files (kit/weights.py) and head-only
freezing."""
from __future__ import annotations

import timm
import torch
from torch import nn

from kit.weights import load_weights, read_state_dict  # noqa: F401  (read_state_dict: kit.model's API)


def create_model(name: str, num_classes: int, pretrained: bool = False, weights: str | None = None,
                 drop_rate: float | None = None, drop_path_rate: float | None = None, in_chans: int = 3,
                 log=print) -> nn.Module:
    """timm.create_model with our head size and input channels (timm adapts a pretrained stem to
    `in_chans`); `weights` loads a local file or `pkg:NAME` on top (offline notebooks, or fine-tuning from an
    earlier kit run on other data), by name or else by order (kit/weights.py)."""
    kwargs = {k: v for k, v in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)) if v is not None}
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans,
                                  **kwargs)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ValueError(f"{err}; list names with timm.list_models()") from err
        raise
    if weights:
        load_weights(model, weights, log=log)
    return model


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze everything but the classifier head."""
    head = {id(p) for p in model.get_classifier().parameters()}
    for p in model.parameters():
        p.requires_grad_(trainable or id(p) in head)


def channel_stats(values, in_chans: int) -> list[float]:
    """Per-channel mean or std for `in_chans` inputs from the RGB ones: their average for one channel,
    RGB then the average for each extra channel (RGBA, RGBY, ...)."""
    values = [float(v) for v in values]
    if len(values) == in_chans:
        return values
    average = sum(values[:3]) / len(values[:3])
    return [average] if in_chans == 1 else (values[:3] + [average] * in_chans)[:in_chans]


def normalisation(model: nn.Module, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean/std the architecture expects (ImageNet stats unless its pretrained config says otherwise),
    one value per input channel."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    in_chans = input_channels(model)
    mean = channel_stats(cfg.get("mean", (0.485, 0.456, 0.406)), in_chans)
    std = channel_stats(cfg.get("std", (0.229, 0.224, 0.225)), in_chans)
    return (torch.tensor(mean, device=device).view(1, -1, 1, 1),
            torch.tensor(std, device=device).view(1, -1, 1, 1))


def input_channels(model: nn.Module) -> int:
    """The channel count of the first convolution or patch embedding (timm has no uniform attribute)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else 3

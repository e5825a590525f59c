"""Models come from timm (any timm name); this adds local weight files and head-only freezing."""
from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn


def create_model(name: str, num_classes: int, pretrained: bool = False, weights: str | None = None,
                 drop_rate: float | None = None, drop_path_rate: float | None = None, in_chans: int = 3,
                 log=print) -> nn.Module:
    """timm.create_model with our head size and input channels (timm adapts a pretrained stem to
    `in_chans`); `weights` loads a local file on top (offline notebooks, or fine-tuning from an earlier kit
    run on other data)."""
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


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict (.pth/.pt/.bin), a safetensors file, or a kit checkpoint (key `model`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # pickle, zip and safetensors each raise their own types for a broken file
        raise ValueError(f"weights file {path}: cannot be read ({type(err).__name__}: {err})") from err
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path}: expected a state dict, got {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(model: nn.Module, path: str | Path, log=print) -> tuple[list[str], list[str]]:
    """Load every tensor whose name and shape match; a classifier of another class count is skipped.
    Returns (skipped, missing) names. Loading no parameter at all is an error: it means the wrong model."""
    state = read_state_dict(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(usable))
    missing = sorted(set(own) - set(usable))
    # a scalar BatchNorm counter (num_batches_tracked) matches any architecture: only parameters count
    if not usable.keys() & {name for name, _ in model.named_parameters()}:
        raise ValueError(f"weights file {path}: no tensor matches the model by name and shape "
                         f"(first keys: {list(state)[:5]})")
    model.load_state_dict(usable, strict=False)
    log(f"loaded {len(usable)}/{len(own)} tensors from {path}"
        + (f"; skipped {len(skipped)} (e.g. {skipped[:3]})" if skipped else "")
        + (f"; {len(missing)} left at init (e.g. {missing[:3]})" if missing else ""))
    return skipped, missing


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

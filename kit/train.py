"""Training of one fold: the loop, its checkpoint (enough to resume exactly) and prediction with TTA."""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from tqdm import tqdm

from kit import metrics
from kit.balance import BatchBalancer, mixup_batch
from kit.config import TrainConfig
from kit.augment import build_augmentation
from kit.inference import predict, tta_views
from kit.loader import CachedImages, EpochSampler, item_seed, make_loader, to_model_input
from kit.model import create_model, normalisation, set_backbone_trainable
from kit.runs import atomic_write
from kit.runtime import Runtime

EPOCH_POSITION = 2**31 - 1  # item_seed position reserved for the per-epoch torch seed


@dataclass
class FoldData:
    """What one fold trains and predicts on: rows index the cached image arrays."""
    fold: int
    task: str
    images: np.ndarray            # (N, S, S, 3) uint8, all train rows
    Y: np.ndarray                 # (N, C) float32 0/1
    train_rows: np.ndarray
    valid_rows: np.ndarray
    test_images: np.ndarray | None = None


@dataclass
class FoldResult:
    valid_probs: np.ndarray
    test_probs: np.ndarray | None
    best_score: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def loss_fn(logits, Y, task, label_smoothing, pos_weight=None, class_weight=None, weights=None):
    """BCE (multi-label) or CE (multi-class) with optional smoothing and per-element/-sample weights."""
    if task == metrics.MULTILABEL:
        target = Y * (1 - label_smoothing) + 0.5 * label_smoothing
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
    else:  # soft targets also carry mixup
        loss = F.cross_entropy(logits, Y, weight=class_weight, label_smoothing=label_smoothing, reduction="none")
    return (loss if weights is None else loss * weights).mean()


def train_one_epoch(model, loader, optimizer, scheduler, scaler, ema, runtime: Runtime, task: str,
                    label_smoothing: float, balancer: BatchBalancer, mixup: float, gen: torch.Generator,
                    state: dict, desc: str = "", quiet: bool = True) -> float:
    """One pass over `loader`; steps the per-update schedule and the EMA; returns the mean loss."""
    model.train()
    mean, std = normalisation(model, runtime.device)
    to_dev = lambda t: None if t is None else t.to(runtime.device, non_blocking=True)  # noqa: E731
    pos_weight, class_weight = to_dev(balancer.pos_weight), to_dev(balancer.class_weight)
    total, count = torch.zeros((), device=runtime.device), 0
    bar = tqdm(loader, desc=desc, leave=False, disable=quiet, dynamic_ncols=True)
    for images, Y in bar:
        x = to_model_input(images, runtime.device, mean, std, runtime.channels_last)
        weights = to_dev(balancer.loss_weights(Y, gen))  # selective learning: from the hard labels
        Y = Y.to(runtime.device, non_blocking=True)
        if mixup > 0:
            x, Y = mixup_batch(x, Y, mixup, gen)
        with runtime.autocast():
            logits = model(x)
        loss = loss_fn(logits.float(), Y, task, label_smoothing, pos_weight, class_weight, weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state["step"] += 1
        scheduler.step_update(num_updates=state["step"])
        if ema is not None:
            ema.update(model, step=state["step"])
        total += loss.detach()
        count += 1
        if not quiet and count % 10 == 1:  # .item() waits for the GPU: only now and then
            bar.set_postfix(loss=f"{total.item() / count:.4f}")
    return total.item() / max(count, 1)


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def train_fold(cfg: TrainConfig, data: FoldData, runtime: Runtime, fold_dir: Path, resume: bool,
               on_epoch=None, quiet: bool = False, log=print) -> FoldResult:
    """Train, early-stop on `cfg.metric`, restore the best weights, predict valid and test rows.

    `on_epoch(epoch, score)` is called after each validation (Optuna reports and prunes there)."""
    metric = cfg.metric or metrics.DEFAULT_METRIC[data.task]
    num_classes = data.Y.shape[1]
    fold_dir.mkdir(parents=True, exist_ok=True)

    # --- setup: model, optimizer, schedule, EMA, balancing, data
    torch.manual_seed(item_seed(cfg.seed, data.fold, 0, EPOCH_POSITION - 1))
    model = create_model(cfg.model, num_classes, cfg.pretrained, cfg.weights, cfg.drop_rate,
                         cfg.drop_path_rate, in_chans=cfg.input_channels, log=log).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    Y_train = data.Y[data.train_rows]
    target = cfg.balance_target if cfg.balance_target in ("uniform", "train") else float(cfg.balance_target)
    balancer = BatchBalancer(cfg.balance, data.task, Y_train, target=target)
    sampler = EpochSampler(len(data.train_rows), cfg.seed, data.fold, shuffle=True,
                           row_weights=balancer.sampler_weights)
    train_set = CachedImages(data.images, data.train_rows, data.Y[data.train_rows].astype(np.float32),
                             build_augmentation(cfg.aug, cfg.symmetry, cfg.input_channels))
    # drop_last avoids a 1-sample batch (BatchNorm fails on it) when the fold size is unlucky
    loader = make_loader(train_set, cfg.batch_size, sampler, runtime.num_workers, runtime.pin_memory,
                         drop_last=len(data.train_rows) > cfg.batch_size)
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.min_lr,
                                       warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr / 100,
                                       step_on_epochs=False, updates_per_epoch=len(loader))
    ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema_decay else None
    scaler = runtime.grad_scaler()
    state = {"epoch": 0, "step": 0, "best_score": None, "best_epoch": -1, "bad_epochs": 0, "history": []}

    # --- resume: everything that shapes the next epoch comes back from last.pt
    last_path, best_path = fold_dir / "last.pt", fold_dir / "best.pt"
    if resume and last_path.exists():
        ckpt = torch.load(last_path, map_location=runtime.device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        state = ckpt["state"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
        log(f"fold {data.fold}: resumed after epoch {state['epoch']}")

    for epoch in range(state["epoch"], cfg.epochs):
        if state["bad_epochs"] >= cfg.patience:
            break
        started = time.perf_counter()
        torch.manual_seed(item_seed(cfg.seed, data.fold, epoch, EPOCH_POSITION))
        gen = torch.Generator().manual_seed(item_seed(cfg.seed, data.fold, epoch, EPOCH_POSITION - 2))
        sampler.set_epoch(epoch)
        set_backbone_trainable(model, epoch >= cfg.freeze_epochs)

        # --- train one epoch
        mean_loss = train_one_epoch(model, loader, optimizer, scheduler, scaler, ema, runtime, data.task,
                                    cfg.label_smoothing, balancer, cfg.mixup, gen, state,
                                    desc=f"fold {data.fold} epoch {epoch + 1}/{cfg.epochs}", quiet=quiet)

        # --- validate (the EMA weights when kept) and keep the best
        eval_model = ema.module if ema is not None else model
        eval_bs = cfg.eval_batch_size or 4 * cfg.batch_size
        valid_probs = predict(eval_model, data.images, data.task, runtime, eval_bs, [lambda x: x],
                              rows=data.valid_rows)
        Y_valid = data.Y[data.valid_rows]
        score = metrics.score(metric, Y_valid, valid_probs, data.task)
        row = {"fold": data.fold, "epoch": epoch + 1, "train_loss": mean_loss,
               "valid_loss": metrics.log_loss(Y_valid, valid_probs, data.task), "valid_metric": score,
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        improved = metrics.is_better(metric, score, state["best_score"])
        if improved:
            state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
            save_checkpoint(best_path, {"model": eval_model.state_dict(), "config": asdict(cfg),
                                        "epoch": epoch + 1, "score": score, "metric": metric})
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["history"].append(row)

        # --- checkpoint: everything needed to resume exactly after this epoch
        save_checkpoint(last_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None, "state": state, "config": asdict(cfg),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        })
        if not quiet:
            log(f"fold {data.fold} epoch {epoch + 1:>3}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  "
                f"valid_loss {row['valid_loss']:.4f}  {metric} {score:.4f}{' *' if improved else ''}  "
                f"lr {row['lr']:.2e}  {row['seconds']:.1f}s")
        if on_epoch is not None:
            on_epoch(epoch + 1, score)

    # --- restore the best weights, predict held-out and test rows with TTA
    eval_model = ema.module if ema is not None else model
    eval_model.load_state_dict(torch.load(best_path, map_location=runtime.device, weights_only=False)["model"])
    eval_bs = cfg.eval_batch_size or 4 * cfg.batch_size
    views, scales = tta_views(cfg.symmetry, cfg.tta), cfg.tta_scales or (1.0,)
    valid_probs = predict(eval_model, data.images, data.task, runtime, eval_bs, views, scales, rows=data.valid_rows)
    test_probs = None if data.test_images is None else \
        predict(eval_model, data.test_images, data.task, runtime, eval_bs, views, scales)
    return FoldResult(valid_probs, test_probs, state["best_score"], state["best_epoch"], state["history"])

"""Training of one fold: setup, the epoch loop (train, validate, select, checkpoint), prediction with TTA.

The checkpoint `last.pt` carries everything needed to resume exactly (model, optimizer, scheduler, scaler,
EMA, epoch, best score, history, RNG states); `best.pt` holds the selected weights (`--select best`: the best
validation epoch, `last`: the final epoch) and the config."""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from kit import metrics
from kit.augment import build_augmentation
from kit.balance import BatchBalancer
from kit.config import TrainConfig
from kit.distributed import Dist, barrier, current, gather_rows, share
from kit.extra.rows import training_set
from kit.inference import predict, tta_views
from kit.loader import item_seed, make_loader
from kit.model import create_model, set_backbone_trainable
from kit.runs import atomic_write
from kit.runtime import Runtime
from kit.sampling import train_sampler
from kit.steps import train_one_epoch

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
    extra: object | None = None   # kit.extra.FoldExtra: pseudo-labelled / external rows, teacher targets


@dataclass
class FoldResult:
    valid_probs: np.ndarray
    test_probs: np.ndarray | None
    best_score: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def predict_shared(model, images, task, runtime, batch, views, scales, rows, dist: Dist) -> np.ndarray:
    """Predictions of `rows`, each data-parallel rank predicting its share, gathered in order."""
    part = predict(model, images, task, runtime, batch, views, scales, rows=share(rows, dist))
    return gather_rows(part, len(rows), dist)


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
    dist = current()
    model = create_model(cfg.model, num_classes, cfg.pretrained, cfg.weights, cfg.drop_rate,
                         cfg.drop_path_rate, in_chans=cfg.input_channels, log=log).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = model if not dist.active else DistributedDataParallel(  # trains; `model` is what is saved
        model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None,
        find_unused_parameters=cfg.freeze_epochs > 0)  # a frozen backbone gets no gradients
    # the fold's rows, plus any extra rows (kit.extra); Y_train: the true labels the balancer counts
    train_set, Y_train, label_smoothing = training_set(data, cfg.label_smoothing,
                                                       build_augmentation(cfg.aug, cfg.symmetry, cfg.input_channels))
    target = cfg.balance_target if cfg.balance_target in ("uniform", "train") else float(cfg.balance_target)
    balancer = BatchBalancer(cfg.balance, data.task, Y_train, target=target)
    sampler = train_sampler(cfg.batch_sampler, data.Y[data.train_rows], len(train_set),
                            cfg.batch_size // dist.world * dist.world, cfg.rare_per_batch, cfg.seed, data.fold,
                            balancer.sampler_weights, dist.rank, dist.world, log=log)
    # drop_last avoids a 1-sample batch (BatchNorm fails on it) when the fold size is unlucky
    batch = cfg.batch_size // dist.world  # data-parallel: the global batch stays --batch-size
    loader = make_loader(train_set, batch, sampler, runtime.num_workers, runtime.pin_memory,
                         drop_last=len(sampler) > batch)
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    layer_decay=cfg.layer_decay)
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.min_lr,
                                       warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr / 100,
                                       step_on_epochs=False,
                                       updates_per_epoch=-(-len(loader) // cfg.accum_steps))
    ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema_decay else None
    scaler = runtime.grad_scaler()
    state = {"epoch": 0, "step": 0, "best_score": None, "best_epoch": -1, "bad_epochs": 0, "history": [],
             "micro": 1}

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
        if state["bad_epochs"] >= cfg.patience and cfg.select == "best":  # `last`: a fixed schedule
            break
        started = time.perf_counter()
        torch.manual_seed(item_seed(cfg.seed, data.fold, epoch, EPOCH_POSITION))
        gen = torch.Generator().manual_seed(item_seed(cfg.seed, data.fold, epoch, EPOCH_POSITION - 2))
        sampler.set_epoch(epoch)
        set_backbone_trainable(model, epoch >= cfg.freeze_epochs)

        # --- train one epoch
        mean_loss = train_one_epoch(net, loader, optimizer, scheduler, scaler, ema, runtime, data.task, balancer,
                                    gen, state, loss=cfg.loss or "auto", label_smoothing=label_smoothing,
                                    mixup=cfg.mixup, accum_steps=cfg.accum_steps, clip_grad=cfg.clip_grad,
                                    desc=f"fold {data.fold} epoch {epoch + 1}/{cfg.epochs}", quiet=quiet, log=log)

        # --- validate (the EMA weights when kept) and keep the selected weights (best so far, or the last)
        eval_model = ema.module if ema is not None else model
        eval_bs = cfg.eval_batch_size or 4 * cfg.batch_size
        valid_probs = predict_shared(eval_model, data.images, data.task, runtime, eval_bs, [lambda x: x], (1.0,),
                                     data.valid_rows, dist)
        Y_valid = data.Y[data.valid_rows]
        score = metrics.score(metric, Y_valid, valid_probs, data.task)
        row = {"fold": data.fold, "epoch": epoch + 1, "train_loss": mean_loss,
               "valid_loss": metrics.log_loss(Y_valid, valid_probs, data.task), "valid_metric": score,
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        improved = metrics.is_better(metric, score, state["best_score"]) or cfg.select == "last"
        if improved:
            state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
            if dist.main:
                save_checkpoint(best_path, {"model": eval_model.state_dict(), "config": asdict(cfg),
                                            "runtime": runtime.describe(), "epoch": epoch + 1, "score": score,
                                            "metric": metric})
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["history"].append(row)

        # --- checkpoint: everything needed to resume exactly after this epoch (rank 0 writes, all wait)
        if dist.main:
            save_checkpoint(last_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "ema": ema.state_dict() if ema is not None else None, "state": state, "config": asdict(cfg),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
            })
        barrier(dist)
        if not quiet:
            log(f"fold {data.fold} epoch {epoch + 1:>3}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  "
                f"valid_loss {row['valid_loss']:.4f}  {metric} {score:.4f}{' *' if improved else ''}  "
                f"lr {row['lr']:.2e}  {row['seconds']:.1f}s")
        if on_epoch is not None:
            on_epoch(epoch + 1, score)

    # --- restore the selected weights, predict held-out and test rows with TTA
    eval_model = ema.module if ema is not None else model
    eval_model.load_state_dict(torch.load(best_path, map_location=runtime.device, weights_only=False)["model"])
    eval_bs = cfg.eval_batch_size or 4 * cfg.batch_size
    views, scales = tta_views(cfg.symmetry, cfg.tta), cfg.tta_scales or (1.0,)
    valid_probs = predict_shared(eval_model, data.images, data.task, runtime, eval_bs, views, scales,
                                 data.valid_rows, dist)
    test_probs = None if data.test_images is None else predict_shared(
        eval_model, data.test_images, data.task, runtime, eval_bs, views, scales, np.arange(len(data.test_images)),
        dist)
    return FoldResult(valid_probs, test_probs, state["best_score"], state["best_epoch"], state["history"])

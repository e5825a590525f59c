"""One epoch of optimisation steps: balancing weights, mixup, gradient accumulation and clipping, and a
batch split in halves (with gradients accumulated over the halves) when CUDA runs out of memory.

The loader's batches stay what the sampler made (so a run stays reproducible and resumable); only how many
pieces a batch is pushed through the model in changes, recorded in `state["micro"]` and kept on resume.
"""
from __future__ import annotations

import torch
from tqdm import tqdm

from kit.balance import BatchBalancer, mixup_batch
from kit.loader import to_model_input
from kit.losses import MULTILABEL, loss_fn
from kit.model import normalisation
from kit.runtime import Runtime


def backward_in_pieces(model, x, Y, weights, task: str, loss: str, label_smoothing: float, pos_weight,
                       class_weight, scaler, runtime: Runtime, pieces: int, scale: float) -> torch.Tensor:
    """Forward + backward of one batch in `pieces` parts; gradients add up to those of the whole batch
    (each part's mean loss weighted by its share of the rows). Returns the batch's mean loss."""
    total = torch.zeros((), device=x.device)
    for part in torch.tensor_split(torch.arange(len(x), device=x.device), pieces):
        with runtime.autocast():
            logits = model(x[part])
        value = loss_fn(logits.float(), Y[part], task, label_smoothing, pos_weight, class_weight,
                        None if weights is None else weights[part], loss) * (len(part) / len(x))
        scaler.scale(value * scale).backward()
        total += value.detach()
    return total


def train_one_epoch(model, loader, optimizer, scheduler, scaler, ema, runtime: Runtime, task: str,
                    balancer: BatchBalancer, gen: torch.Generator, state: dict, *, loss: str = "auto",
                    label_smoothing: float = 0.0, mixup: float = 0.0, accum_steps: int = 1,
                    clip_grad: float | None = None, desc: str = "", quiet: bool = True, log=print) -> float:
    """One pass over `loader`; an optimizer step every `accum_steps` batches (and at the end), each stepping
    the per-update schedule and the EMA; returns the mean loss."""
    model.train()
    bare = getattr(model, "module", model)  # a DistributedDataParallel wrapper trains; the bare model is described
    mean, std = normalisation(bare, runtime.device)
    to_dev = lambda t: None if t is None else t.to(runtime.device, non_blocking=True)  # noqa: E731
    pos_weight, class_weight = to_dev(balancer.pos_weight), to_dev(balancer.class_weight)
    state.setdefault("micro", 1)
    total, count = torch.zeros((), device=runtime.device), 0
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=desc, leave=False, disable=quiet, dynamic_ncols=True)
    for i, (images, Y, *row_weight) in enumerate(bar):  # a row weight comes with extra rows (kit.extra)
        x = to_model_input(images, runtime.device, mean, std, runtime.channels_last)
        weights = to_dev(balancer.loss_weights(Y, gen))  # selective learning: from the hard labels
        Y = Y.to(runtime.device, non_blocking=True)
        if mixup > 0 and row_weight:  # a mixed row's weight mixes like its target
            x, Yw = mixup_batch(x, torch.cat([Y, to_dev(row_weight[0])[:, None]], dim=1), mixup, gen)
            Y, row_weight = Yw[:, :-1], [Yw[:, -1]]
        elif mixup > 0:
            x, Y = mixup_batch(x, Y, mixup, gen)
        if row_weight:
            w = to_dev(row_weight[0]).float()
            w = w[:, None] if task == MULTILABEL else w  # per element (multi-label) or per sample
            weights = w if weights is None else weights * w
        while True:
            try:
                total += backward_in_pieces(model, x, Y, weights, task, loss, label_smoothing, pos_weight,
                                            class_weight, scaler, runtime, state["micro"], 1 / accum_steps)
                break
            except torch.cuda.OutOfMemoryError:
                if 2 * state["micro"] > len(x) // 2:  # pieces of one row break BatchNorm: give up
                    raise
                state["micro"] *= 2
                optimizer.zero_grad(set_to_none=True)  # the failed batch's partial gradients are dropped
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                log(f"CUDA out of memory: batches now go through the model in {state['micro']} pieces of "
                    f"~{len(x) // state['micro']} rows (gradients accumulated; same effective batch)")
        count += 1
        if (i + 1) % accum_steps == 0 or i + 1 == len(loader):
            if clip_grad:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            scheduler.step_update(num_updates=state["step"])
            if ema is not None:
                ema.update(bare, step=state["step"])
        if not quiet and count % 10 == 1:  # .item() waits for the GPU: only now and then
            bar.set_postfix(loss=f"{total.item() / count:.4f}")
    return total.item() / max(count, 1)

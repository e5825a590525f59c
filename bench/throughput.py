"""Training throughput, three loops side by side in one run (same model, batch, image size, optimizer):

  pure   forward + backward + step on in-memory random tensors: the compute ceiling
  kit    kit.steps.train_one_epoch on the decoded-once image cache, with the kit's augmentation
  naive  the same training function fed by a Dataset that decodes and resizes the JPEG in __getitem__

Rounds interleave the three loops so a busy machine slows them alike; medians are reported.
    python bench/throughput.py                      # efficientnet_b0, 64 px, batch 32, embedded bccd
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kit.balance import BatchBalancer  # noqa: E402
from kit.cache import cached_images  # noqa: E402
from kit.data import EMBEDDED_DATA, load_competition  # noqa: E402
from kit.augment import build_augmentation  # noqa: E402
from kit.autotune import choose_channels_last, machine  # noqa: E402
from kit.loader import CachedImages, EpochSampler, make_loader  # noqa: E402
from kit.model import create_model, normalisation  # noqa: E402
from kit.runtime import resolve_runtime  # noqa: E402
from kit.losses import loss_fn  # noqa: E402
from kit.steps import train_one_epoch  # noqa: E402


class DecodeEveryTime(Dataset):
    """The naive pipeline: open, decode and resize the original file on every access."""

    def __init__(self, paths, Y, size, augmentation):
        self.paths, self.Y, self.size, self.augmentation = paths, Y, size, augmentation

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, item):
        i, seed = item
        image = np.array(Image.open(self.paths[i]).convert("RGB").resize((self.size, self.size)))
        self.augmentation.set_random_seed(seed)
        image = self.augmentation(image=image)["image"]
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(self.Y[i])


def trainer(model_name, num_classes, runtime, steps_per_epoch):
    torch.manual_seed(0)
    model = create_model(model_name, num_classes, log=lambda *a: None).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = create_optimizer_v2(model, opt="adamw", lr=1e-3, weight_decay=0.05)
    sched, _ = create_scheduler_v2(opt, sched="cosine", num_epochs=100, step_on_epochs=False,
                                   updates_per_epoch=steps_per_epoch)
    return model, opt, sched


def time_kit_loop(loader, model_name, task, Y, runtime):
    model, opt, sched = trainer(model_name, Y.shape[1], runtime, len(loader))
    balancer = BatchBalancer("none", task, Y)
    args = (model, loader, opt, sched, runtime.grad_scaler(), None, runtime, task, balancer,
            torch.Generator().manual_seed(0), {"step": 0})
    loader.sampler.set_epoch(0)
    train_one_epoch(*args)  # warm-up epoch: allocator, kernels, page cache
    loader.sampler.set_epoch(1)
    started = time.perf_counter()
    train_one_epoch(*args)
    return len(loader) * loader.batch_size / (time.perf_counter() - started)


def time_pure(model_name, task, Y, size, batch, steps, runtime):
    model, opt, sched = trainer(model_name, Y.shape[1], runtime, steps)
    mean, std = normalisation(model, runtime.device)
    x = ((torch.rand(batch, 3, size, size, device=runtime.device) - mean) / std).contiguous(
        memory_format=torch.channels_last if runtime.channels_last else torch.contiguous_format)
    y = torch.from_numpy(Y[:batch]).to(runtime.device)
    scaler = runtime.grad_scaler()
    model.train()
    for step in range(steps + 1):
        if step == 1:  # first step is warm-up
            started = time.perf_counter()
        with runtime.autocast():
            logits = model(x)
        loss = loss_fn(logits.float(), y, task, 0.0)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step_update(step)
    loss.item()
    return steps * batch / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(EMBEDDED_DATA))
    parser.add_argument("--model", default="efficientnet_b0")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=256, help="train rows per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="memory format of all three loops (default: measured, as kit.cv does)")
    args = parser.parse_args(argv)

    comp = load_competition(args.data)
    runtime = resolve_runtime(args.device, None, args.channels_last, None)
    if runtime.channels_last is None:
        with tempfile.TemporaryDirectory() as scratch:  # measure afresh: no cached answer from another run
            chosen = choose_channels_last(lambda: create_model(args.model, comp.Y.shape[1], log=lambda *a: None),
                                          runtime.device, args.batch_size, args.img_size, 3, args.model, scratch)
        runtime = replace(runtime, channels_last=chosen)
    rows = np.arange(min(args.rows, len(comp.train_ids)))
    Y = comp.Y[rows].astype(np.float32)
    augmentation = build_augmentation("medium")
    with tempfile.TemporaryDirectory() as cache_dir:
        started = time.perf_counter()
        images = cached_images([comp.train_paths[i] for i in rows], args.img_size, cache_dir, log=lambda *a: None)
        cache_seconds = time.perf_counter() - started

        def loader_of(dataset):
            sampler = EpochSampler(len(rows), seed=0, fold=0, shuffle=True)
            return make_loader(dataset, args.batch_size, sampler, runtime.num_workers, runtime.pin_memory,
                               drop_last=True)

        kit_loader = loader_of(CachedImages(images, np.arange(len(rows)), Y, augmentation))
        naive_loader = loader_of(DecodeEveryTime([comp.train_paths[i] for i in rows], Y, args.img_size,
                                                 augmentation))
        steps = len(kit_loader)
        results = {"pure": [], "kit": [], "naive": []}
        for r in range(args.rounds):
            results["pure"].append(time_pure(args.model, comp.task, Y, args.img_size, args.batch_size, steps,
                                             runtime))
            results["kit"].append(time_kit_loop(kit_loader, args.model, comp.task, Y, runtime))
            results["naive"].append(time_kit_loop(naive_loader, args.model, comp.task, Y, runtime))
            print(f"round {r + 1}: " + "  ".join(f"{k} {v[-1]:.1f} img/s" for k, v in results.items()), flush=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{args.model} @ {args.img_size}px, batch {args.batch_size}, {steps} steps/epoch, device "
          f"{runtime.device} ({machine(runtime.device)}), channels_last {runtime.channels_last}, workers "
          f"{runtime.num_workers}; "
          f"cache build {cache_seconds:.2f}s for {len(rows)} images (once per data and size)")
    print("| loop | images/s (median of %d) |" % args.rounds)
    print("|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.1f} |")
    print(f"\nkit / pure compute = {med['kit'] / med['pure']:.3f}  (target >= 0.9)")
    print(f"kit / naive loop   = {med['kit'] / med['naive']:.3f}  (target >= 1.8)")


if __name__ == "__main__":
    main()

"""Inference speed of kit.predict against pure forward compute, side by side in one run.

  pure    forward passes of the same model and batch on in-memory tensors: the compute ceiling
  kit     kit.predict's work for one run on a warm cache: load each fold's checkpoint, stream the cached
          uint8 rows, normalise, every TTA view, average (kit.predict.predict_run)
and the time split of a first prediction: decode + resize into the cache (cold), forward passes, the extra
views of TTA. Rounds interleave pure and kit so a busy machine slows both alike; medians are reported.

    python bench/predict.py                       # resnet18, 96 px, 2 folds, hflip TTA, embedded bccd (364 images)
    python bench/predict.py --model efficientnet_b0 --img-size 128 --symmetry d4
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kit.cache import cached_images  # noqa: E402
from kit.config import config_from_dict  # noqa: E402
from kit.crossval import run_cv  # noqa: E402
from kit.config import TrainConfig  # noqa: E402
from kit.data import EMBEDDED_DATA, load_competition  # noqa: E402
from kit.model import create_model  # noqa: E402
from kit.predict import predict_run  # noqa: E402
from kit.runs import read_json  # noqa: E402
from kit.runtime import resolve_runtime  # noqa: E402


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def pure_forward(model_name, n_classes, size, batch, n_images, passes, runtime) -> float:
    """Images per second when each image needs `passes` forward passes (folds x views), no data pipeline."""
    model = create_model(model_name, n_classes, log=lambda *a: None).to(runtime.device).eval()
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size, device=runtime.device)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    steps = int(np.ceil(n_images / batch))
    with torch.no_grad():
        model(x)  # warm-up
        started = time.perf_counter()
        for _ in range(steps * passes):
            model(x)
    return steps * batch / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--img-size", type=int, default=96)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--symmetry", default="hflip", choices=["none", "hflip", "d4"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="kit-bench-predict-"))
    cfg = TrainConfig(model=args.model, img_size=args.img_size, folds=args.folds, epochs=1, symmetry=args.symmetry,
                      eval_batch_size=args.batch_size, oof_dir=str(work / "oof"), folds_dir=str(work / "folds"),
                      cache_dir=str(work / "train-cache"), name="bench")
    run_cv(cfg, quiet=True, log=lambda *a: None)  # a real run folder; its weights do not matter for speed
    config = read_json(work / "oof" / "bench" / "config.json")
    comp = load_competition(EMBEDDED_DATA)
    paths, ids = [*comp.train_paths, *comp.test_paths], [*comp.train_ids, *comp.test_ids]
    cfg = config_from_dict(config["train"])
    runtime = resolve_runtime(None, cfg.amp, cfg.channels_last, cfg.num_workers)
    views = {"none": 1, "hflip": 2, "d4": 8}[args.symmetry]

    # --- a first prediction: decode into the cache (cold), then forward passes with and without TTA
    started = time.perf_counter()
    images = cached_images(paths, args.img_size, work / "predict-cache", ids=ids, log=lambda *a: None)
    decode = time.perf_counter() - started
    kit, pure, no_tta = [], [], []
    plain = {**config, "train": {**config["train"], "tta": False}}
    for _ in range(args.rounds):
        started = time.perf_counter()
        predict_run(work / "oof" / "bench", config, images, None, args.batch_size)
        kit.append(len(ids) / (time.perf_counter() - started))
        started = time.perf_counter()
        predict_run(work / "oof" / "bench", plain, images, None, args.batch_size)
        no_tta.append(len(ids) / (time.perf_counter() - started))
        pure.append(pure_forward(args.model, len(comp.classes), args.img_size, args.batch_size, len(ids),
                                 args.folds * views, runtime))
    kit_ips, pure_ips, plain_ips = (statistics.median(v) for v in (kit, pure, no_tta))
    forward = len(ids) / pure_ips
    print(f"{cpu_name()}, {args.threads} threads; {args.model} {args.img_size}px, batch {args.batch_size}, "
          f"{args.folds} folds x {views} views ({args.symmetry}), {len(ids)} images, medians of {args.rounds}")
    print(f"  pure forward compute   {pure_ips:8.1f} img/s")
    print(f"  kit.predict (warm)     {kit_ips:8.1f} img/s   kit / pure = {kit_ips / pure_ips:.3f}")
    print(f"  kit.predict, no TTA    {plain_ips:8.1f} img/s")
    print(f"  first prediction: decode + resize {decode:.2f}s, forward {forward:.2f}s "
          f"(of which the {views - 1} extra TTA view(s) {forward * (views - 1) / views:.2f}s), "
          f"pipeline overhead {max(len(ids) / kit_ips - forward, 0):.2f}s")


if __name__ == "__main__":
    main()

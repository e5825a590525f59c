"""Memory format chosen by measurement: channels_last is faster for some models on some machines and slower
on others (an Intel AVX-512 CPU and an AMD AVX2 one disagreed on resnet18), so no fixed default is right.

At the start of a run whose `channels_last` is unset, a few training steps of the model are timed in each
format on the run's device, batch and image size; the faster wins. The answer is cached per machine (CPU
model or GPU name, torch version, threads), model, size, batch and channels in
`<cache_dir>/memory-format.json`, so it is measured once.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from kit.runs import atomic_write

WARMUP, TIMED = 2, 3


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        try:
            name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
        except (OSError, StopIteration):
            name = platform.processor() or platform.machine()
    return f"{name}|torch {torch.__version__}|{torch.get_num_threads()} threads"


def time_steps(model: torch.nn.Module, x: torch.Tensor, channels_last: bool) -> float:
    """Seconds per forward + backward + SGD step, median of TIMED after WARMUP."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    x = x.contiguous(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    times = []
    for i in range(WARMUP + TIMED):
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        started = time.perf_counter()
        model(x).float().sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        if i >= WARMUP:
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def choose_channels_last(make_model, device: torch.device, batch: int, size: int, in_chans: int,
                         model_name: str, cache_dir: str | Path, log=print) -> bool:
    """True when channels_last trained faster in this measurement (or the cached one)."""
    path = Path(cache_dir).expanduser() / "memory-format.json"
    key = f"{machine(device)}|{model_name}|{size}px|batch {batch}|{in_chans}ch"
    known = json.loads(path.read_text()) if path.exists() else {}
    if key in known:
        return bool(known[key]["channels_last"])
    torch_state = torch.get_rng_state()  # timing must not shift the run's random stream
    x = torch.randn(min(batch, 32), in_chans, size, size, device=device)
    seconds = {fmt: time_steps(make_model().to(device), x, fmt) for fmt in (False, True)}
    torch.set_rng_state(torch_state)
    winner = seconds[True] < seconds[False]
    log(f"memory format: channels_last {seconds[True] * 1e3:.0f} ms/step vs contiguous "
        f"{seconds[False] * 1e3:.0f} ms/step -> {'channels_last' if winner else 'contiguous'} "
        f"(cached in {path})")
    known = json.loads(path.read_text()) if path.exists() else {}  # another run may have written meanwhile
    known[key] = {"channels_last": winner, "seconds": {"contiguous": seconds[False], "channels_last": seconds[True]}}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(known, indent=2) + "\n"))
    return winner

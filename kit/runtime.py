"""Device settings resolved once from the config: `None` means "what is right for this device"."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None   # None = full precision
    channels_last: bool | None      # None: measure at the start of a run (kit.autotune)
    num_workers: int
    pin_memory: bool

    def describe(self) -> dict:
        """What the run actually used (JSON-able), recorded beside its weights."""
        return {"device": str(self.device), "channels_last": bool(self.channels_last),
                "amp": None if self.amp_dtype is None else str(self.amp_dtype).removeprefix("torch.")}

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        # fp16 needs loss scaling; bf16 and fp32 do not (a disabled scaler is a no-op)
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)


def resolve_runtime(device: str | None, amp: bool | None, channels_last: bool | None,
                    num_workers: int | None) -> Runtime:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    use_amp = cuda if amp is None else amp
    amp_dtype = None
    if use_amp:
        bf16 = (cuda and torch.cuda.is_bf16_supported()) or dev.type == "cpu"
        amp_dtype = torch.bfloat16 if bf16 else torch.float16
    return Runtime(
        device=dev,
        amp_dtype=amp_dtype,
        # no fixed default: faster for some models on some machines, slower on others (kit.autotune measures)
        channels_last=channels_last,
        # on a CPU the model already uses every core: augmenting in the main process measured faster
        num_workers=(2 if cuda else 0) if num_workers is None else num_workers,
        pin_memory=cuda,
    )

"""Prediction of one model on cached images: test-time augmentation that follows the data's symmetry, over
optional scales, streamed batch by batch (memory grows with the batch, not with the data).

Used by training (validation, OOF and test predictions) and by `kit.predict`, so both see the same views.
Imports torch alone (no augmentation library): an offline notebook can run it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kit.loader import CachedImages, make_loader, to_model_input
from kit.model import normalisation
from kit.runtime import Runtime

MULTILABEL = "multilabel"


def tta_views(symmetry: str, tta: bool) -> list:
    """Functions of an NCHW batch that leave the label unchanged: identity only without TTA; identity and
    the horizontal mirror for `hflip`; the 8 flips/rotations of the square for `d4`."""
    identity = [lambda x: x]
    if not tta or symmetry == "none":
        return identity
    if symmetry == "hflip":
        return identity + [lambda x: x.flip(3)]
    if symmetry == "d4":
        rotations = [lambda x, k=k: torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
        return rotations + [lambda x, r=r: r(x).flip(3) for r in rotations]
    raise ValueError(f"symmetry must be none, hflip or d4, got {symmetry!r}")


def rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The batch resized by `scale` (multi-scale TTA; convolutional nets pool over any size)."""
    if scale == 1.0:
        return x
    size = max(8, int(round(x.shape[-1] * scale)))
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=scale < 1)


@torch.no_grad()
def predict(model, images: np.ndarray, task: str, runtime: Runtime, batch_size: int, views: list,
            scales=(1.0,), rows: np.ndarray | None = None, progress=None) -> np.ndarray:
    """(len(rows), C) probabilities of `images[rows]` (all rows by default), averaged over views x scales.

    `images` may be a read-only memory map: rows are read one batch at a time, never copied as a whole.
    `progress(n_done)` is called after each batch."""
    model.eval()
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    mean, std = normalisation(model, runtime.device)
    loader = make_loader(CachedImages(images, rows, None, None), batch_size, None, runtime.num_workers,
                         runtime.pin_memory)
    out = []
    for batch, _ in loader:
        x = to_model_input(batch, runtime.device, mean, std, runtime.channels_last)
        total = None
        for scale in scales:
            xs = rescale(x, scale)
            for view in views:
                with runtime.autocast():
                    logits = model(view(xs)).float()
                probs = torch.sigmoid(logits) if task == MULTILABEL else torch.softmax(logits, dim=-1)
                total = probs if total is None else total + probs
        out.append((total / (len(views) * len(scales))).cpu().numpy())
        if progress is not None:
            progress(len(batch))
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))

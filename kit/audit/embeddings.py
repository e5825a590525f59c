"""A finished run's view of the images: the penultimate features (timm `forward_features` + the head's
pooling, `forward_head(x, pre_logits=True)`) of its fold-0 model, on the pixels it was trained on (the
run's own image size and channels, read through the cache)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kit.cache import cached_images
from kit.config import config_from_dict
from kit.loader import CachedImages, make_loader, to_model_input
from kit.model import normalisation
from kit.predict import load_fold_model


@torch.no_grad()
def run_embeddings(run_dir: Path, config: dict, sources: list, ids, cache_dir: str, device: str | None = None,
                   log=print) -> np.ndarray:
    """(N, D) float32 features of `sources` from `run_dir/fold0/best.pt`."""
    cfg = config_from_dict(config["train"])
    checkpoint = run_dir / "fold0" / "best.pt"
    model, runtime = load_fold_model(checkpoint, cfg, len(config["classes"]), device)
    model.eval()
    images = cached_images(sources, cfg.img_size, cache_dir, cfg.input_channels, ids, where=str(run_dir), log=log)
    mean, std = normalisation(model, runtime.device)
    loader = make_loader(CachedImages(images, np.arange(len(images)), None), cfg.eval_batch_size or
                         4 * cfg.batch_size, None, 0, False)
    out = []
    for batch, _ in loader:
        x = to_model_input(batch, runtime.device, mean, std, runtime.channels_last)
        with runtime.autocast():
            features = model.forward_head(model.forward_features(x), pre_logits=True)
        out.append(features.float().flatten(1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def centred_unit(features: np.ndarray) -> np.ndarray:
    """Rows centred on the mean feature and scaled to unit length: ReLU features of unrelated images are
    all positive and look alike by raw cosine; centred, only truly similar images stay close to 1."""
    x = features - features.mean(axis=0)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

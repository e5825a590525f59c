"""Features of every image that need no model: simple statistics a person can read (size, brightness,
contrast, colour, blur, channels) and a pixel embedding (the 8x8 colour thumbnail reduced by PCA). The
outlier and shift checks use them, together with a run's embeddings when one is given."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import laplace
from sklearn.decomposition import PCA

STATISTICS = ["width", "height", "aspect", "bands", "brightness", "contrast", "red", "green", "blue",
              "saturation", "blur", "dark_share", "bright_share"]


def image_statistics(thumbs: np.ndarray, facts: np.ndarray) -> pd.DataFrame:
    """One row per image: file width/height/aspect/bands; brightness (mean), contrast (std), the channel
    means and saturation of the thumbnail in [0, 1]; blur = variance of its Laplacian (low = blurred or
    flat); the share of near-black and near-white pixels."""
    x = np.asarray(thumbs, dtype=np.float32) / 255.0
    colour = x if x.shape[-1] >= 3 else np.repeat(x[..., :1], 3, axis=-1)
    colour = colour[..., :3]
    grey = colour.mean(axis=-1)
    saturation = colour.max(axis=-1) - colour.min(axis=-1)
    blur = np.array([laplace(g).var() for g in grey])
    return pd.DataFrame({
        "width": facts[:, 0], "height": facts[:, 1], "aspect": facts[:, 0] / np.maximum(facts[:, 1], 1),
        "bands": facts[:, 2], "brightness": grey.mean(axis=(1, 2)), "contrast": grey.std(axis=(1, 2)),
        "red": colour[..., 0].mean(axis=(1, 2)), "green": colour[..., 1].mean(axis=(1, 2)),
        "blue": colour[..., 2].mean(axis=(1, 2)), "saturation": saturation.mean(axis=(1, 2)), "blur": blur,
        "dark_share": (grey < 0.05).mean(axis=(1, 2)), "bright_share": (grey > 0.95).mean(axis=(1, 2))})


def pixel_embedding(thumbs: np.ndarray, dims: int = 16, seed: int = 0) -> np.ndarray:
    """(N, <=dims) PCA of the 8x8 colour thumbnails: the coarse layout and colour of each image."""
    small = np.stack([np.asarray(Image.fromarray(np.asarray(t)[..., :3] if t.shape[-1] >= 3 else t[..., 0])
                                 .resize((8, 8), Image.Resampling.BOX), dtype=np.float32).ravel()
                      for t in thumbs]) / 255.0
    dims = min(dims, len(small) - 1, small.shape[1])
    if dims < 1:
        return np.zeros((len(small), 0))
    return PCA(n_components=dims, random_state=seed).fit_transform(small)


def standardized(*blocks: np.ndarray) -> np.ndarray:
    """Blocks side by side, each column centred and scaled (constant columns become 0)."""
    x = np.hstack([np.asarray(b, dtype=np.float64).reshape(len(b), -1) for b in blocks])
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)

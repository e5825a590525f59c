"""Decode and resize every image once into an on-disk uint8 array shared by all folds, models and runs.

The cache file is keyed by the image paths, their sizes and mtimes, and the target size, so editing an image
or changing `img_size` builds a new file and never serves stale pixels.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from kit.runs import atomic_write

CACHE_FORMAT = 1  # bump when the decoding/resizing recipe changes


class ImageReadError(ValueError):
    pass


def cache_key(paths: list[Path], size: int) -> str:
    h = hashlib.sha256(f"v{CACHE_FORMAT}|{size}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"|{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def load_resized(path: Path, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3). INTER_AREA is the right filter for shrinking."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageReadError(f"cannot decode image {path}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def cached_images(paths: list[Path], size: int, cache_dir: str | Path, workers: int = 4,
                  log=print) -> np.ndarray:
    """(N, size, size, 3) uint8, memory-mapped read-only from `cache_dir`; built on first use."""
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / f"{cache_key(paths, size)}-{size}px-{len(paths)}.npy"
    if not target.exists():
        log(f"caching {len(paths)} images at {size}px -> {target}")

        def build(tmp):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))

            def fill(i):
                out[i] = load_resized(paths[i], size)

            # cv2 releases the GIL while decoding, so threads use every core
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(fill, range(len(paths))))
            out.flush()
            del out

        atomic_write(target, build)
    return np.load(target, mmap_mode="r")

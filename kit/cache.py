"""Decode and resize every image once into an on-disk uint8 array shared by all folds, models and runs.

Building the cache is also the image validation: every file goes through the one decoder
(`kit.data.images.read_image`) and any that fails is reported, by id, before a run starts. The cache file is
keyed by the image paths, their sizes and mtimes, the size and the channel count, so editing an image or
changing `img_size` builds a new file and never serves stale pixels.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kit.data.errors import DataError, examples
from kit.data.images import ImageReadError, read_image
from kit.runs import atomic_write

CACHE_FORMAT = 2  # bump when the decoding/resizing recipe changes (2: one Pillow-based decoder)


def _files(source) -> list[Path]:
    return [Path(p) for p in source] if isinstance(source, (tuple, list)) else [Path(source)]


def cache_key(sources: list, size: int, in_chans: int = 3) -> str:
    h = hashlib.sha256(f"v{CACHE_FORMAT}|{size}|{in_chans}".encode())
    for source in sources:
        for p in _files(source):
            st = os.stat(p)
            h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def load_resized(path: Path, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3) of one file, as the cache holds it."""
    return read_image(path, size, 3)


def cached_images(sources: list, size: int, cache_dir: str | Path, in_chans: int = 3, ids=None,
                  where: str = "images", workers: int = 4, log=print) -> np.ndarray:
    """(N, size, size, in_chans) uint8, memory-mapped read-only from `cache_dir`; built on first use.

    `sources[i]` is a file or a tuple of single-channel files. Files that cannot be decoded raise one
    DataError naming every bad id (`ids[i]`) and file, and leave no cache file behind."""
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / f"{cache_key(sources, size, in_chans)}-{size}px-{in_chans}ch-{len(sources)}.npy"
    if not target.exists():
        log(f"caching {len(sources)} images at {size}px -> {target}")
        ids = list(ids) if ids is not None else [str(_files(s)[0]) for s in sources]

        def build(tmp):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(len(sources), size, size, in_chans))

            def fill(i):
                try:
                    out[i] = read_image(sources[i], size, in_chans)
                except ImageReadError as err:
                    return f"{ids[i]} ({err})"
                return None

            # Pillow releases the GIL while decoding and resizing, so threads use every core
            with ThreadPoolExecutor(max_workers=workers) as pool:
                bad = [b for b in pool.map(fill, range(len(sources))) if b is not None]
            if bad:
                raise DataError(f"{where}: images that cannot be decoded: {examples(bad)}")
            out.flush()
            del out

        atomic_write(target, build)
    return np.load(target, mmap_mode="r")

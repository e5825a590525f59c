"""Image fingerprints. Exact: sha256 of the decoded pixels at the file's own resolution (so a copy saved in
another lossless format, or with other metadata, matches; JPEG draft decoding is avoided because it depends
on the requested size). Near: a DCT perceptual hash (pHash) of the grayscale thumbnail, compared by
Hamming distance: re-encoding, slight resizing or cropping move only a few of its 64 bits."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from scipy.fft import dctn

from kit.data.images import read_image

HASH_BITS = 64


def first_file(source):
    return source[0] if isinstance(source, (tuple, list)) else source


def file_facts(source) -> tuple[int, int, int]:
    """(width, height, bands) from the file header of `source` (its first file for one file per channel)."""
    with Image.open(first_file(source)) as image:
        return image.size[0], image.size[1], len(image.getbands())


def pixel_digest(source, width: int, height: int, in_chans: int) -> str:
    """sha256 of the decoded pixels at the image's own size (read through the kit's one decoder)."""
    pixels = read_image(source, max(width, height), in_chans)
    return hashlib.sha256(f"{width}x{height}|".encode() + pixels.tobytes()).hexdigest()


def pixel_digests(sources: list, facts: np.ndarray, in_chans: int, workers: int = 4) -> list[str]:
    # Pillow releases the GIL while decoding, as in kit.cache
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda k: pixel_digest(sources[k], int(facts[k, 0]), int(facts[k, 1]), in_chans),
                             range(len(sources))))


def gray(images: np.ndarray, size: int = 32) -> np.ndarray:
    """(N, size, size) float32 grayscale of (N, H, W, C) uint8 thumbnails (channel mean, box resize)."""
    out = np.empty((len(images), size, size), np.float32)
    for k, image in enumerate(images):
        plane = Image.fromarray(np.asarray(image, dtype=np.float32).mean(axis=-1))
        out[k] = np.asarray(plane.resize((size, size), Image.Resampling.BOX))
    return out


def phash(images: np.ndarray) -> np.ndarray:
    """(N,) uint64 perceptual hashes: the 8x8 lowest DCT frequencies of the 32x32 grayscale, each bit
    = coefficient above the median of the 63 non-constant ones."""
    low = dctn(gray(images), axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(images), HASH_BITS)
    bits = low > np.median(low[:, 1:], axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)


def close_hashes(hashes: np.ndarray, max_distance: int, block: int = 1024):
    """(rows a, rows b, Hamming distances) of every pair a < b within `max_distance` bits, in blocks so
    memory stays O(block x N)."""
    found_a, found_b, found_d = [], [], []
    for start in range(0, len(hashes), block):
        chunk = hashes[start:start + block]
        distance = np.bitwise_count(chunk[:, None] ^ hashes[None, :])
        a, b = np.nonzero(distance <= max_distance)
        a = a + start
        keep = a < b
        found_a.append(a[keep])
        found_b.append(b[keep])
        found_d.append(distance[a[keep] - start, b[keep]])
    if not found_a:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d).astype(int)

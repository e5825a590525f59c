"""The one image decoder: validation, the training cache and prediction all read pixels through
`read_image`, so what is accepted is exactly what is cached.

What it handles: every mode Pillow opens (grayscale, palette, RGBA/LA composited onto white, CMYK, 16- and
32-bit integer and float), EXIF orientation, 16-bit files scaled by their real range (12-bit data is not
divided by 256), large JPEGs decoded at reduced size, and multi-channel inputs: `in_chans` channels from
one file (RGBA kept as 4 channels, or the pages of a multi-page TIFF) or one single-channel file per channel.
16-bit colour files, which Pillow truncates to 8 bits, are read with OpenCV.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Whole-slide scans and satellite tiles are legitimate inputs here, not decompression bombs.
Image.MAX_IMAGE_PIXELS = 1 << 32
BACKGROUND = 255  # transparent pixels are composited onto white, as a viewer shows them
ORIENTATION = 0x0112  # the EXIF tag


class ImageReadError(ValueError):
    """A file that cannot be decoded into the requested channels; the message names the file."""


def _integer_range(array: np.ndarray) -> float:
    """The real full-scale value of integer pixels: the smallest common bit depth (8, 10, 12, 14, 16, ...)
    that holds the data, so 12-bit microscopy keeps its brightness instead of coming out almost black."""
    top = int(array.max()) if array.size else 0
    bits = next(b for b in (8, 10, 12, 14, 16, 24, 32, 64) if top < 2**b)
    return float(2**bits - 1)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Any numeric pixel array -> uint8 by its real range (see `_integer_range`); floats in [0, 1] are
    scaled by 255, other floats by their own min..max."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array.astype(np.float64))
        low, high = (0.0, 1.0) if array.min() >= 0 and array.max() <= 1 else (array.min(), array.max())
        scaled = (array - low) / max(high - low, 1e-12)
    else:
        scaled = np.clip(array, 0, None).astype(np.float64) / _integer_range(array)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)


def _composite(image: Image.Image) -> Image.Image:
    """Alpha onto a white background (the colour under fully transparent pixels is arbitrary)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _truncated_by_pillow(image: Image.Image) -> bool:
    """Pillow reads 16-bit colour (PNG 'RGB;16B', TIFF 'RGB;16N', ...) as 8 bits: take the high byte."""
    raw = [t.args[0] if isinstance(t.args, tuple) else t.args for t in getattr(image, "tile", [])]
    return image.mode in ("RGB", "RGBA") and any(isinstance(r, str) and ";16" in r for r in raw)


def _read_with_opencv(path: Path) -> np.ndarray:
    import cv2  # only for 16-bit colour files; everything else is Pillow's

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageReadError(f"{path}: cannot be decoded")
    if array.ndim == 3:  # OpenCV is BGR(A)
        array = array[..., [2, 1, 0, 3][: array.shape[2]]] if array.shape[2] in (3, 4) else array
    return array


def _pages(image: Image.Image) -> list[np.ndarray]:
    """Every page of a multi-page file (TIFF stacks store one channel per page) as an array."""
    pages = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        pages.append(np.asarray(image))
    return pages


def _decoded(path: Path, size: int) -> tuple[Image.Image | None, np.ndarray | None]:
    """(Pillow image, None) or (None, array) for the few files Pillow cannot represent faithfully."""
    image = Image.open(path)
    if _truncated_by_pillow(image):
        return None, _read_with_opencv(path)
    if image.format == "JPEG":
        image.draft(image.mode, (size, size))  # DCT scaling: a 6000 px photo is decoded at ~1/8 the work
    if image.getexif().get(ORIENTATION, 1) != 1:  # transposing copies: only when the tag asks for it
        image = ImageOps.exif_transpose(image)
    return image, None


HIGH_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _channels(image: Image.Image | None, array: np.ndarray | None, in_chans: int, path: Path) -> np.ndarray:
    """(H, W, in_chans) uint8 from one decoded file."""
    if array is not None:  # OpenCV path: 16-bit colour
        array = to_uint8(array)
        array = array[..., None] if array.ndim == 2 else array
        if not (in_chans in (1, 3) and array.shape[2] == 4):
            return _pick(array, in_chans, path)
        image = Image.fromarray(array, "RGBA")  # composite below, like any 8-bit RGBA file
    if in_chans not in (1, 3) and getattr(image, "n_frames", 1) == in_chans > 1:
        return np.stack([to_uint8(page) for page in _pages(image)], axis=-1)
    if image.mode in HIGH_BIT_GRAY:
        return _pick(to_uint8(np.asarray(image))[..., None], in_chans, path)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if in_chans not in (1, 3):  # raw channels, alpha included (RGBA files as 4-channel data)
        return _pick(np.asarray(image.convert("RGBA" if has_alpha else "RGB")), in_chans, path)
    rgb = _composite(image) if has_alpha else image.convert("RGB")
    return np.asarray(rgb.convert("L"))[..., None] if in_chans == 1 else np.asarray(rgb)


def _pick(array: np.ndarray, in_chans: int, path: Path) -> np.ndarray:
    have = array.shape[2]
    if have == in_chans:
        return array
    if have == 1:
        return np.repeat(array, in_chans, axis=-1) if in_chans in (1, 3) else _fail(path, in_chans, have)
    if in_chans == 1:
        return array[..., :3].mean(axis=-1, keepdims=True).round().astype(np.uint8)
    if in_chans == 3 and have == 4:
        return array[..., :3]
    return _fail(path, in_chans, have)


def _fail(path: Path, want: int, have: int):
    raise ImageReadError(f"{path}: has {have} channel(s), {want} wanted (--in-chans); a file per channel "
                         f"needs --channels SUFFIX ...")


def resize(array: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> (size, size, C): box filter when no side grows (each output pixel averages the
    input pixels it covers, like OpenCV's INTER_AREA), bilinear when a side is enlarged."""
    h, w, c = array.shape
    if (h, w) == (size, size):
        return array
    method = Image.Resampling.BOX if min(h, w) >= size else Image.Resampling.BILINEAR
    if c in (3, 4):
        mode = "RGB" if c == 3 else "RGBA"
        return np.asarray(Image.fromarray(array, mode).resize((size, size), method))
    return np.stack([np.asarray(Image.fromarray(array[..., k], "L").resize((size, size), method))
                     for k in range(c)], axis=-1)


def read_image(source: Path | str | tuple, size: int, in_chans: int = 3) -> np.ndarray:
    """(size, size, in_chans) uint8 from one file, or from a tuple of single-channel files (one per channel).
    Raises ImageReadError naming the file on anything that cannot be decoded."""
    files = [Path(p) for p in source] if isinstance(source, (tuple, list)) else [Path(source)]
    try:
        if len(files) > 1:
            planes = [resize(_channels(*_decoded(f, size), 1, f), size)[..., 0] for f in files]
            if len(planes) != in_chans:
                raise ImageReadError(f"{files[0]}: {len(planes)} channel files for {in_chans} channels")
            return np.stack(planes, axis=-1)
        return resize(_channels(*_decoded(files[0], size), in_chans, files[0]), size)
    except ImageReadError:
        raise
    except Exception as err:  # Pillow and the codecs raise many types for broken or truncated files
        raise ImageReadError(f"{files[0]}: cannot be decoded ({type(err).__name__}: {err})") from err

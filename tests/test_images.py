"""The one image decoder (kit.data.images.read_image): modes, EXIF, bit depths, channels, large files, and
the cache as the place where an undecodable image is found, by id, before a run starts."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from competitions import bccd_subset, digits_competition
from conftest import tree_hashes
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from kit.cache import cached_images
from kit.cv import main as cv_main
from kit.data import DataError
from kit.data.images import ImageReadError, read_image

SIZE = 16


def gradient(h=SIZE, w=SIZE) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (h + w - 2)], -1).astype(np.uint8)


def test_grayscale_and_palette_become_rgb(tmp_path):
    gray = gradient()[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", SIZE), np.repeat(gray[..., None], 3, -1))
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", SIZE, in_chans=1)[..., 0], gray)
    Image.fromarray(gradient()).quantize(16).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png", SIZE), expected)


def test_alpha_is_composited_onto_white_or_kept_as_a_fourth_channel(tmp_path):
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[..., 0] = 200                     # red everywhere, under the alpha below
    rgba[:, : SIZE // 2, 3] = 255          # left half opaque, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = read_image(tmp_path / "a.png", SIZE)
    assert (rgb[:, : SIZE // 2] == [200, 0, 0]).all() and (rgb[:, SIZE // 2:] == 255).all()
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", SIZE, in_chans=4), rgba)


def test_cmyk_and_exif_orientation(tmp_path):
    image = Image.fromarray(gradient(SIZE, 2 * SIZE))
    image.convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    cmyk = read_image(tmp_path / "c.jpg", SIZE)
    expected = np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB").resize((SIZE, SIZE), Image.BOX))
    np.testing.assert_array_equal(cmyk, expected)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the stored landscape pixels are a portrait photo
    image.save(tmp_path / "o.png", exif=exif.tobytes())
    upright = np.asarray(image.transpose(Image.Transpose.ROTATE_270).resize((SIZE, SIZE), Image.BOX))
    np.testing.assert_array_equal(read_image(tmp_path / "o.png", SIZE), upright)


def test_sixteen_bit_is_scaled_by_its_real_range(tmp_path):
    twelve_bit = (gradient()[..., 0].astype(np.uint32) * 4095 // 255).astype(np.uint16)
    Image.fromarray(twelve_bit).save(tmp_path / "g16.png")          # Pillow: mode I;16
    gray = read_image(tmp_path / "g16.png", SIZE)[..., 0]
    assert gray.max() == 255                                            # not 4095 / 256 = 15
    np.testing.assert_allclose(gray, twelve_bit / 4095 * 255, atol=1)
    colour = (gradient().astype(np.uint32) * 4095 // 255).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), colour[..., ::-1])           # 16-bit RGB: Pillow truncates it
    np.testing.assert_allclose(read_image(tmp_path / "c16.png", SIZE), colour / 4095 * 255, atol=1)
    floats = gradient()[..., 0].astype(np.float32) / 255
    Image.fromarray(floats).save(tmp_path / "f.tif")
    np.testing.assert_allclose(read_image(tmp_path / "f.tif", SIZE)[..., 0], gradient()[..., 0], atol=1)


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path, monkeypatch):
    big = np.asarray(Image.fromarray(gradient()).resize((2400, 1800), Image.BILINEAR))
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    requested = []
    draft = JpegImageFile.draft
    monkeypatch.setattr(JpegImageFile, "draft", lambda self, mode, size: requested.append(size) or
                        draft(self, mode, size))
    small = read_image(tmp_path / "big.jpg", 64)
    assert requested == [(64, 64)] and small.shape == (64, 64, 3)
    full = np.asarray(Image.open(tmp_path / "big.jpg").convert("RGB").resize((64, 64), Image.BOX))
    assert np.abs(small.astype(int) - full).mean() < 3  # same picture, a fraction of the decoding work


def test_channels_from_pages_or_one_file_per_channel(tmp_path):
    planes = [np.full((SIZE, SIZE), 40 * k, np.uint8) for k in range(1, 6)]
    first, *rest = [Image.fromarray(p) for p in planes]
    first.save(tmp_path / "stack.tif", save_all=True, append_images=rest)
    np.testing.assert_array_equal(read_image(tmp_path / "stack.tif", SIZE, in_chans=5), np.stack(planes, -1))
    files = []
    for k, plane in enumerate(planes[:4]):
        Image.fromarray(plane).save(tmp_path / f"x_{k}.png")
        files.append(tmp_path / f"x_{k}.png")
    np.testing.assert_array_equal(read_image(tuple(files), SIZE, in_chans=4), np.stack(planes[:4], -1))
    Image.fromarray(gradient()).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match=r"rgb\.png: has 3 channel\(s\), 5 wanted"):
        read_image(tmp_path / "rgb.png", SIZE, in_chans=5)


def test_broken_file_names_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match=r"bad\.jpg: cannot be decoded"):
        read_image(tmp_path / "bad.jpg", SIZE)
    Image.fromarray(gradient()).save(tmp_path / "good.png")
    with pytest.raises(DataError, match=r"train: images that cannot be decoded: \['b \(.*bad\.jpg"):
        cached_images([tmp_path / "good.png", tmp_path / "bad.jpg"], SIZE, tmp_path / "cache", ids=["a", "b"],
                      where="train")
    assert not list((tmp_path / "cache").glob("*.npy"))  # no half-built cache is left behind


def test_undecodable_image_stops_kit_cv_before_the_old_run_is_touched(tmp_path, cv_args, capsys):
    data = bccd_subset(tmp_path / "data", n_train=40, n_test=6)
    argv = cv_args(data, "run")
    assert cv_main(argv) == 0
    run_dir = tmp_path / "oof" / "run"
    before = tree_hashes(run_dir)
    broken = data / "images" / f"{pd.read_csv(data / 'train.csv')['id'][5]}.jpg"
    broken.unlink()
    broken.write_bytes(b"\xff\xd8\xff garbage")  # PIL's header check alone would not catch all of these
    assert cv_main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "cannot be decoded" in err and broken.stem in err
    assert tree_hashes(run_dir) == before


def test_four_channel_run_trains_and_predicts(tmp_path, cv_args):
    data = digits_competition(tmp_path / "digits", n_train=60, n_test=10)
    for path in (data / "images").iterdir():  # RGBA files: the alpha plane carries information too
        rgb = np.asarray(Image.open(path).convert("RGB"))
        Image.fromarray(np.dstack([rgb, 255 - rgb[..., 0]]), "RGBA").save(path)
    assert cv_main(cv_args(data, "rgba", "--in-chans", "4")) == 0
    test = pd.read_csv(tmp_path / "oof" / "rgba" / "test.csv")
    assert len(test) == 10 and np.isfinite(test.iloc[:, 1:].to_numpy()).all()

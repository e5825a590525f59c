"""Symmetry-aware augmentation and TTA, multi-scale TTA, and prediction that streams the cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kit.augment import build_augmentation
from kit.inference import predict, tta_views
from kit.model import create_model
from kit.runtime import resolve_runtime

RUNTIME = resolve_runtime("cpu", False, False, 0)


def asymmetric_images(n=6, size=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def model_for(task="multilabel"):
    torch.manual_seed(0)
    return create_model("test_resnet", 4, log=lambda *a: None).eval()


def plain(model, images, task="multilabel"):
    return predict(model, images, task, RUNTIME, 8, [lambda x: x])


def test_d4_tta_is_the_mean_of_the_eight_transformed_predictions():
    images, model = asymmetric_images(), model_for()
    transformed = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    transformed += [t[:, :, ::-1] for t in transformed]   # each rotation mirrored left-right
    expected = np.mean([plain(model, np.ascontiguousarray(t)) for t in transformed], axis=0)
    got = predict(model, images, "multilabel", RUNTIME, 8, tta_views("d4", True))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, plain(model, images), atol=1e-4)  # the views do change the answer


def test_hflip_tta_is_identity_and_mirror_only_and_none_is_identity():
    images, model = asymmetric_images(), model_for()
    mirror = np.ascontiguousarray(images[:, :, ::-1])
    expected = (plain(model, images) + plain(model, mirror)) / 2
    np.testing.assert_allclose(predict(model, images, "multilabel", RUNTIME, 8, tta_views("hflip", True)),
                               expected, atol=1e-6)
    assert len(tta_views("none", True)) == 1 and len(tta_views("d4", False)) == 1


@pytest.mark.parametrize("symmetry,allowed", [
    ("hflip", lambda im: [im, im[:, ::-1]]),
    ("none", lambda im: [im]),
    ("d4", lambda im: [np.rot90(im, k) for k in range(4)] + [np.rot90(im, k)[:, ::-1] for k in range(4)]),
])
def test_light_augmentation_only_makes_the_symmetry_views(symmetry, allowed):
    image = asymmetric_images(1)[0]
    pipeline = build_augmentation("light", symmetry)
    seen = set()
    for seed in range(40):
        if pipeline is None:
            out = image
        else:
            pipeline.set_random_seed(seed)
            out = pipeline(image=image)["image"]
        matches = [k for k, view in enumerate(allowed(image)) if np.array_equal(out, view)]
        assert matches, f"{symmetry}: augmentation produced a view outside the symmetry"
        seen.add(matches[0])
    assert len(seen) == len(allowed(image))  # and it does use every view it may


def test_multi_scale_tta_averages_the_scales():
    images, model = asymmetric_images(size=32), model_for()
    small = torch.nn.functional.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=(16, 16),
                                            mode="bilinear", align_corners=False, antialias=True)
    assert small.shape[-1] == 16
    both = predict(model, images, "multilabel", RUNTIME, 8, [lambda x: x], scales=(1.0, 0.5))
    half = predict(model, images, "multilabel", RUNTIME, 8, [lambda x: x], scales=(0.5,))
    np.testing.assert_allclose(both, (plain(model, images) + half) / 2, atol=1e-6)
    assert not np.allclose(half, plain(model, images), atol=1e-4)


class CountingImages:
    """A stand-in for the memory-mapped cache that records how many rows each access reads."""

    def __init__(self, images):
        self.images, self.largest = images, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.largest = max(self.largest, np.size(index) if not isinstance(index, slice) else len(self.images))
        return self.images[index]


def test_prediction_reads_one_row_at_a_time_never_the_whole_fold():
    images, model = asymmetric_images(40), model_for()
    counting = CountingImages(images)
    rows = np.arange(5, 35)
    got = predict(model, counting, "multilabel", RUNTIME, 8, [lambda x: x], rows=rows)
    assert counting.largest == 1  # peak memory follows the batch, not the number of rows
    np.testing.assert_allclose(got, plain(model, images[rows]), atol=1e-6)

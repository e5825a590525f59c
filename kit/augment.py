"""Training augmentation: strength presets whose flips and rotations follow the data's symmetry.

A symmetry says which transforms leave the label unchanged: `none` (text, digits, chest X-rays: a 6 rotated
is a 9, a heart on the right is a finding), `hflip` (natural photos: a mirrored cat is a cat; the safe
default), `d4` (microscopy, satellite tiles, histology: all 8 flips and 90-degree rotations). TTA uses the
same views (kit.inference), so training and prediction agree on what the model may see.
"""
from __future__ import annotations

import albumentations as A
import cv2

SYMMETRIES = ("none", "hflip", "d4")
STRENGTHS = ("none", "light", "medium", "strong")


def symmetry_ops(symmetry: str) -> list:
    if symmetry not in SYMMETRIES:
        raise ValueError(f"symmetry must be one of {SYMMETRIES}, got {symmetry!r}")
    return {"none": [], "hflip": [A.HorizontalFlip(p=0.5)], "d4": [A.SquareSymmetry(p=1.0)]}[symmetry]


def build_augmentation(strength: str, symmetry: str = "hflip", in_chans: int = 3) -> A.Compose | None:
    """light = the symmetry's flips/rotations; medium adds small scale changes and brightness/contrast
    (and hue/saturation for RGB); strong adds small rotations, shifts, blur and noise. Small rotations keep
    labels in every domain, unlike 90-degree ones."""
    if strength not in STRENGTHS:
        raise ValueError(f"augmentation strength must be one of {STRENGTHS}, got {strength!r}")
    if strength == "none":
        return None
    ops = symmetry_ops(symmetry)
    if strength in ("medium", "strong"):
        big = strength == "strong"
        ops += [
            A.Affine(scale=(0.8, 1.2) if big else (0.9, 1.1), rotate=(-15, 15) if big else 0,
                     translate_percent=(-0.05, 0.05) if big else None,
                     border_mode=cv2.BORDER_REFLECT_101, p=0.5),
            A.RandomBrightnessContrast(0.2 if big else 0.1, 0.2 if big else 0.1, p=0.5),
        ]
        if in_chans == 3:
            ops.append(A.HueSaturationValue(8 if big else 4, 15 if big else 8, 10 if big else 5, p=0.3))
    if strength == "strong":
        ops += [A.GaussianBlur(blur_limit=(3, 3), p=0.1), A.GaussNoise(std_range=(0.01, 0.04), p=0.1)]
    return A.Compose(ops, seed=0) if ops else None

"""Image augmentations in model space: flips mirror, crops shift, jitter stays in range."""

from __future__ import annotations

import torch

from diffusionkit_image.augment import IMAGE_TRANSFORMS


def test_flip_mirrors_left_to_right():
    x = torch.arange(12.0).view(1, 3, 4) / 12
    assert torch.equal(IMAGE_TRANSFORMS["flip"](x, torch.Generator()), x.flip(-1))


def test_crop_shifts_the_content_by_at_most_the_fraction():
    x = torch.zeros(1, 20, 20)
    x[0, 10, 10] = 1.0
    for seed in range(10):
        y = IMAGE_TRANSFORMS["crop"](x, torch.Generator().manual_seed(seed), fraction=0.1)
        row, col = (int(i) for i in (y[0] == 1.0).nonzero()[0])
        assert y.shape == x.shape and abs(row - 10) <= 2 and abs(col - 10) <= 2


def test_jitter_stays_in_model_range():
    x = torch.rand(3, 8, 8) * 2 - 1
    y = IMAGE_TRANSFORMS["jitter"](x, torch.Generator().manual_seed(0), brightness=0.5, contrast=0.5)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1 and not torch.equal(x, y)


def test_the_image_modality_offers_them():
    from diffusionkit_image.modality import ImageModality

    assert list(ImageModality(channels=1, size=8).augmentations()) == ["flip", "crop", "jitter"]

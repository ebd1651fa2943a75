"""diffusionkit's plugin contract (diffusionkit.testing), run against the image plugin."""

from pathlib import Path

import numpy as np
from PIL import Image

from diffusionkit.testing import ModalityContractTests


class TestImageContract(ModalityContractTests):
    plugin = "image"
    data_overrides = {"shapes": ["data.dataset.num_samples=8"]}
    roundtrip_rmse = 0.01  # PNG is lossless; only the 8-bit quantisation remains
    bad_files = {"truncated.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text.jpg": b"hello, not a JPEG"}

    def write_sample(self, stem: Path) -> Path:
        """A 40x30 RGB gradient JPEG written by Pillow: load crops, resizes and converts it."""
        pixels = np.zeros((30, 40, 3), np.uint8)
        pixels[..., 0] = np.linspace(0, 255, 40, dtype=np.uint8)
        pixels[..., 2] = np.linspace(0, 255, 30, dtype=np.uint8)[:, None]
        Image.fromarray(pixels).save(stem.with_suffix(".jpg"), quality=95)
        return stem.with_suffix(".jpg")

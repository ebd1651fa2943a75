"""diffusionkit's plugin contract (diffusionkit.testing), run against the video plugin."""

from pathlib import Path

import numpy as np
from PIL import Image

from diffusionkit.testing import ModalityContractTests


class TestVideoContract(ModalityContractTests):
    plugin = "video"
    data_overrides = {"sprites": ["data.dataset.per_class=1"], "moving_digits": ["data.dataset.per_class=1"]}
    roundtrip_rmse = 0.02  # the GIF palette of a grey clip is exact up to 8 bits
    bad_files = {"header_only.mp4": b"\x00\x00\x00\x18ftypmp42", "text.gif": b"GIF89a not really"}

    def write_sample(self, stem: Path) -> Path:
        """A 20-frame GIF of a bright bar sweeping right, written by Pillow at 10 fps."""
        frames = []
        for i in range(20):
            pixels = np.zeros((24, 40), np.uint8)
            pixels[:, 2 * i:2 * i + 4] = 220
            frames.append(Image.fromarray(pixels))
        frames[0].save(stem.with_suffix(".gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
        return stem.with_suffix(".gif")

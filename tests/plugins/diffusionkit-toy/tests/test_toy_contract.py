"""diffusionkit's plugin contract (diffusionkit.testing), run against the test-only toy plugin:
the core's tests rely on it, so it must be a plugin the core accepts."""

from pathlib import Path

import numpy as np

from diffusionkit.testing import ModalityContractTests


class TestToyContract(ModalityContractTests):
    plugin = "toy"
    roundtrip_rmse = 1e-6  # .npy keeps float32 exactly
    bad_files = {"truncated.npy": b"\x93NUMPY\x01\x00", "text.npy": b"hello, not an array"}

    def write_sample(self, stem: Path) -> Path:
        """A 1x32x32 ramp in [-1, 1], the toy modality's default shape."""
        path = stem.with_suffix(".npy")
        np.save(path, np.linspace(-1, 1, 1024, dtype=np.float32).reshape(1, 32, 32))
        return path

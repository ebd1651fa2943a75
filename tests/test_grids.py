"""``diffusionkit.grids.tile``: torchvision's ``make_grid`` layout on uint8 arrays, for pictures and clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusionkit.grids import near_square_columns, tile

make_grid = pytest.importorskip("torchvision.utils").make_grid  # the reference layout (installed with the plugins)


def as_uint8(x: torch.Tensor) -> np.ndarray:
    """``[..., C, H, W]`` in [0, 1] as uint8 ``[..., H, W, C]``."""
    return x.mul(255).round().to(torch.uint8).movedim(-3, -1).numpy()


@pytest.mark.parametrize(("n", "columns"), [(1, None), (2, None), (3, 2), (5, 3), (7, 10), (10, None)])
def test_tile_is_make_grid_to_the_value(n, columns):
    batch = torch.rand(n, 3, 6, 5, generator=torch.Generator().manual_seed(n))
    nrow = columns or near_square_columns(n)
    expected = as_uint8(make_grid(batch, nrow=nrow, padding=2, pad_value=1.0))
    assert np.array_equal(tile(as_uint8(batch), columns, gutter=2, fill=255), expected)


def test_every_frame_of_a_batch_of_clips_is_tiled_alike():
    clips = np.random.default_rng(0).integers(0, 255, (5, 4, 6, 5, 3), dtype=np.uint8)  # [B, T, H, W, C]
    grid = tile(clips, gutter=1)
    assert grid.shape == (4, 1 + 2 * (6 + 1), 1 + 3 * (5 + 1), 3)  # 5 clips: 3 a row, 2 rows
    for t in range(4):
        assert np.array_equal(grid[t], tile(clips[:, t], gutter=1))
    assert np.array_equal(grid[:, 1:7, 7:12], clips[1])  # the second clip, all its frames


def test_near_square_columns():
    assert [near_square_columns(n) for n in (1, 2, 4, 5, 9, 10, 16, 17)] == [1, 2, 2, 3, 3, 4, 4, 5]


@pytest.mark.parametrize("shape", [(0, 4, 4, 3), (4, 4, 3)])
def test_a_batch_that_is_not_one_is_refused(shape):
    with pytest.raises(ValueError, match=r"tile: expected a non-empty batch \[B, \.\.\., H, W, C\]"):
        tile(np.zeros(shape, np.uint8))

"""SketchCondition: edge maps from clean batches, user drawings from files, config discovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusionkit_image.modality import ImageModality
from diffusionkit_image.sketch import SketchCondition
from PIL import Image, ImageDraw, ImageOps

from diffusionkit.modality import ConcatCondition, MediaError

SIZE = 16
LO, HI = 4, 12  # the square covers rows and columns LO..HI-1


def square_batch(square, background, batch: int = 2) -> torch.Tensor:
    """``[batch, C, 16, 16]``: a flat ``background`` with a filled ``square`` colour (C values)."""
    channels = len(square)
    x = torch.tensor(background, dtype=torch.float32).view(1, channels, 1, 1).repeat(batch, 1, SIZE, SIZE)
    x[:, :, LO:HI, LO:HI] = torch.tensor(square, dtype=torch.float32).view(1, channels, 1, 1)
    return x


def square_border() -> torch.Tensor:
    """Mask of the square's own outermost pixels."""
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[LO:HI, LO:HI] = True
    mask[LO + 1:HI - 1, LO + 1:HI - 1] = False
    return mask


@pytest.mark.parametrize(
    ("square", "background"),
    [([1.0], [-1.0]), ([-1.0], [1.0]), ([1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]),
     ([1.0, -1.0, -1.0], [-1.0, -1.0, -1.0])],
    ids=["light-on-dark", "dark-on-light", "rgb-white-on-black", "rgb-red-on-black"],
)
def test_from_data_marks_the_square_outline(square, background):
    """A filled square gives +1 on its border, -1 deep inside and far outside, [B, 1, H, W]."""
    edges = SketchCondition().from_data(square_batch(square, background))
    assert edges.shape == (2, 1, SIZE, SIZE)
    assert set(edges.unique().tolist()) == {-1.0, 1.0}
    for item in edges[:, 0]:
        assert (item[square_border()] == 1).all()
        assert (item[LO + 2:HI - 2, LO + 2:HI - 2] == -1).all()  # deep inside
        assert (item[:LO - 2] == -1).all() and (item[HI + 2:] == -1).all()  # far outside
        assert (item[:, :LO - 2] == -1).all() and (item[:, HI + 2:] == -1).all()


def test_from_data_flat_image_and_image_border_have_no_lines():
    """A flat item has no lines; a step touching the image border is an edge only at the step."""
    x = torch.full((2, 1, SIZE, SIZE), -1.0)
    x[1, :, :, SIZE // 2:] = 1.0  # right half light
    edges = SketchCondition().from_data(x)
    assert (edges[0] == -1).all()
    line_columns = (edges[1, 0] == 1).all(dim=0).nonzero().flatten().tolist()
    assert line_columns == [SIZE // 2 - 1, SIZE // 2]
    assert (edges[1, 0][:, [0, SIZE - 1]] == -1).all()  # replicate padding: no frame


def test_from_data_threshold_controls_sensitivity():
    """A weak step (0.2 of the range) is a line at threshold 0.1 but not at the default 0.25."""
    x = square_batch([0.2], [0.0], batch=1)
    assert (SketchCondition(threshold=0.1).from_data(x) == 1).any()
    assert (SketchCondition().from_data(x) == -1).all()


def draw(tmp_path, name: str, size: int, invert: bool = False):
    """A 3 px-wide dark rectangle outline and diagonal on white (optionally inverted), as PNG."""
    img = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(img)
    pen.rectangle([size // 4, size // 4, 3 * size // 4, 3 * size // 4], outline=0, width=3)
    pen.line([(0, 0), (size - 1, size - 1)], fill=0, width=3)
    if invert:
        img = ImageOps.invert(img)
    path = tmp_path / name
    img.save(path)
    return path


@pytest.mark.parametrize(("file_size", "size"), [(32, 32), (48, 16), (32, [16, 24])])
def test_load_dark_and_light_lines_agree(tmp_path, file_size, size):
    """A dark-on-white drawing and its inverse load identically, resized to the modality's size."""
    modality = ImageModality(3, size)
    sketch = SketchCondition()
    dark = sketch.load(draw(tmp_path, "dark.png", file_size), modality)
    light = sketch.load(draw(tmp_path, "light.png", file_size, invert=True), modality)
    assert dark.shape == (1, *modality.spatial_size)
    assert torch.equal(dark, light)
    assert set(dark.unique().tolist()) == {-1.0, 1.0}
    assert 0.05 < (dark == 1).float().mean() < 0.5  # lines are present but the paper dominates


def test_load_at_native_size_maps_lines_and_paper_exactly(tmp_path):
    """Without resizing, every drawn (black) pixel is +1 and every paper pixel -1."""
    path = draw(tmp_path, "dark.png", 32)
    ink = torch.from_numpy(np.array(Image.open(path)) == 0)
    loaded = SketchCondition().load(path, ImageModality(1, 32))
    assert torch.equal(loaded[0] == 1, ink)


def test_load_unreadable_file_raises_media_error(tmp_path):
    """A missing drawing raises the modality's one-line MediaError naming the file."""
    path = tmp_path / "nothing.png"
    with pytest.raises(MediaError, match="nothing.png") as info:
        SketchCondition().load(path, ImageModality(3, 16))
    assert "\n" not in str(info.value)


def test_sketch_contract_attributes():
    """The condition adds one channel and is named 'sketch' on the command line."""
    sketch = SketchCondition()
    assert isinstance(sketch, ConcatCondition)
    assert sketch.channels == 1
    assert sketch.input_name == "sketch"


def test_core_config_finds_the_sketch_condition():
    """The core's Hydra composition finds the plugin's cond=sketch, data=shapes and modality."""
    pytest.importorskip("diffusionkit.conf", reason="the core's configs are packaged only when installed")
    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=image", "data=shapes", "cond=sketch"])
    assert cfg.cond._target_ == "diffusionkit_image.sketch.SketchCondition"
    assert cfg.modality._target_ == "diffusionkit_image.modality.ImageModality"
    assert cfg.data.dataset._target_ == "diffusionkit_image.datasets.ShapesDataset"

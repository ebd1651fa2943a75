"""ImageModality: reading every common pixel format, file errors, saving, grids and rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusionkit_image.modality import ImageModality
from diffusionkit_image.pixels import to_uint8
from PIL import Image
from torchvision.utils import make_grid

from diffusionkit.modality import MediaError, Rendered

LUMA = (0.299, 0.587, 0.114)


def model_value(level: float) -> float:
    """An 8-bit level (0..255) in model space [-1, 1]."""
    return level / 127.5 - 1.0


def write(tmp_path, name: str, img: Image.Image, **save_args):
    """Save ``img`` as ``tmp_path/name`` and return the path."""
    path = tmp_path / name
    img.save(path, **save_args)
    return path


def expected(values, size: int = 8) -> torch.Tensor:
    """A constant ``[C, size, size]`` tensor with per-channel ``values``."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1).expand(-1, size, size)


# --- reading pixel formats ------------------------------------------------------------------

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


@pytest.mark.parametrize("index", range(len(PALETTE)))
def test_palette_png_entries_map_to_exact_rgb(tmp_path, index):
    """Each palette index of a 'P' PNG loads as its palette colour, exactly, in RGB mode."""
    img = Image.new("P", (8, 8), index)
    img.putpalette([v for rgb in PALETTE for v in rgb])
    path = write(tmp_path, "palette.png", img)
    assert Image.open(path).mode == "P"
    x = ImageModality(3, 8).load(path)
    assert torch.equal(x, expected([model_value(v) for v in PALETTE[index]]))


def test_palette_png_in_grey_mode_uses_luma(tmp_path):
    """A red palette entry loaded with channels=1 is its ITU-R 601 luminance (0.299)."""
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255])
    x = ImageModality(1, 8).load(write(tmp_path, "red.png", img))
    torch.testing.assert_close(x, expected([2 * LUMA[0] - 1]), atol=1e-5, rtol=0)


def test_palette_transparency_index_loads_as_white(tmp_path):
    """A palette PNG whose transparent index is black loads that index as white."""
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0])
    x = ImageModality(3, 8).load(write(tmp_path, "trns.png", img, transparency=0))
    assert torch.equal(x, expected([1.0, 1.0, 1.0]))


@pytest.mark.parametrize(("alpha", "value"), [(0, 1.0), (128, model_value(255 - 128)), (255, -1.0)])
def test_rgba_black_composites_on_white(tmp_path, alpha, value):
    """Black with alpha 0 / 128 / 255 composites on white to 1.0 / ~0.0 / -1.0."""
    img = Image.new("RGBA", (8, 8), (0, 0, 0, alpha))
    x = ImageModality(3, 8).load(write(tmp_path, "rgba.png", img))
    torch.testing.assert_close(x, expected([value] * 3), atol=1e-3, rtol=0)
    if alpha == 128:
        assert x.abs().max() < 0.01


@pytest.mark.parametrize("channels", [1, 3])
def test_grey_png_fills_every_channel(tmp_path, channels):
    """An 'L' image keeps its value with channels=1 and repeats it in all 3 with channels=3."""
    x = ImageModality(channels, 8).load(write(tmp_path, "grey.png", Image.new("L", (8, 8), 200)))
    assert x.shape == (channels, 8, 8)
    torch.testing.assert_close(x, expected([model_value(200)] * channels), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("level", "value"), [(0, -1.0), (32768, 0.0), (65535, 1.0)])
def test_sixteen_bit_png_uses_the_full_16_bit_range(tmp_path, level, value):
    """A 16-bit PNG is scaled by 65535: mid-grey 32768 loads near 0.0, not clipped to white."""
    img = Image.fromarray(np.full((8, 8), level, np.uint16))
    path = write(tmp_path, "deep.png", img)
    assert Image.open(path).mode.startswith("I")
    x = ImageModality(3, 8).load(path)
    torch.testing.assert_close(x, expected([value] * 3), atol=1e-3, rtol=0)


def test_grey_alpha_and_float_images(tmp_path):
    """A transparent 'LA' pixel loads as white; a float ('F') TIFF in [0, 1] keeps its values."""
    la = Image.fromarray(np.zeros((8, 8, 2), np.uint8))  # black, fully transparent
    assert torch.equal(ImageModality(1, 8).load(write(tmp_path, "la.png", la)), expected([1.0]))
    tiff = write(tmp_path, "float.tif", Image.fromarray(np.full((8, 8), 0.25, np.float32)))
    torch.testing.assert_close(ImageModality(1, 8).load(tiff), expected([-0.5]))


def test_jpeg_loads_within_compression_tolerance(tmp_path):
    """A smooth RGB gradient saved as JPEG (quality 95) loads close to its source pixels."""
    yy, xx = np.mgrid[0:32, 0:32]
    source = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1).astype(np.uint8)
    x = ImageModality(3, 32).load(write(tmp_path, "gradient.jpg", Image.fromarray(source), quality=95))
    reference = torch.from_numpy(source).permute(2, 0, 1).float() / 127.5 - 1.0
    error = (x - reference).abs()
    assert x.shape == (3, 32, 32)
    assert error.max() < 0.08
    assert error.mean() < 0.02


# (file width, height), modality size, crop box (left, top, right, bottom) the modality must keep
CROPS = [
    ((64, 32), 16, (16, 0, 48, 32)),
    ((32, 64), 16, (0, 16, 32, 48)),
    ((64, 32), [16, 24], (8, 0, 56, 32)),
    ((48, 64), [16, 24], (0, 16, 48, 48)),
]


@pytest.mark.parametrize(("file_size", "size", "box"), CROPS)
def test_centre_crop_and_resize(tmp_path, file_size, size, box):
    """A non-square file is centre-cropped to the modality's aspect, then resized to [C, H, W].

    The file is white inside the expected crop and black outside: squashing instead of
    cropping would pull whole black rows/columns into the result.
    """
    width, height = file_size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[box[1]:box[3], box[0]:box[2]] = 255
    x = ImageModality(3, size).load(write(tmp_path, "wide.png", Image.fromarray(pixels)))
    hw = (size, size) if isinstance(size, int) else tuple(size)
    assert x.shape == (3, *hw)
    assert x.min() > 0.8  # at most a slight Lanczos fringe from outside the crop
    assert x.mean() > 0.95


# --- file errors ----------------------------------------------------------------------------


def _missing(tmp_path):
    return tmp_path / "missing.png"


def _empty(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    return path


def _text(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    return path


def _truncated(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = write(tmp_path, "full.png", Image.fromarray(noise))
    path = tmp_path / "truncated.png"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return path


def _directory(tmp_path):
    path = tmp_path / "folder.png"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [(_missing, "no such file"), (_empty, "empty"), (_text, "not an image"),
     (_truncated, "truncated"), (_directory, "directory")],
    ids=["missing", "empty", "text", "truncated", "directory"],
)
def test_unreadable_file_raises_one_line_media_error(tmp_path, make, reason):
    """Unusable files raise MediaError whose single-line message names the file and the reason."""
    path = make(tmp_path)
    with pytest.raises(MediaError) as info:
        ImageModality(3, 8).load(path)
    message = str(info.value)
    assert str(path) in message
    assert reason in message
    assert "\n" not in message


# --- saving and rendering -------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_save_load_round_trip_within_quantisation(tmp_path, channels):
    """save writes stem.png; loading it back gives the tensor within 8-bit quantisation."""
    x = torch.rand(channels, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    modality = ImageModality(channels, 32)
    paths = modality.save(x, tmp_path / "out" / "item")
    assert paths == [tmp_path / "out" / "item.png"]
    assert paths[0].is_file()
    assert Image.open(paths[0]).size == (32, 32)
    back = modality.load(paths[0])
    assert back.shape == x.shape
    assert (back - x).abs().max() <= 1 / 127


def test_save_clamps_and_keeps_dotted_stems(tmp_path):
    """Values outside [-1, 1] are clamped, 0 rounds to 128, and 'a.v1' becomes 'a.v1.png'."""
    (path,) = ImageModality(1, 2).save(torch.tensor([[[-3.0, 3.0], [0.0, 1.0]]]), tmp_path / "a.v1")
    assert path == tmp_path / "a.v1.png"
    assert np.asarray(Image.open(path)).tolist() == [[0, 255], [128, 255]]


def test_save_rejects_a_batch(tmp_path):
    """save of a 4-D tensor raises MediaError naming the target file and the shape."""
    with pytest.raises(MediaError, match=r"item\.png.*\(2, 3, 8, 8\)"):
        ImageModality(3, 8).save(torch.zeros(2, 3, 8, 8), tmp_path / "item")


@pytest.mark.parametrize(("n", "channels", "wh"), [
    (4, 3, (2 * 34 + 2, 2 * 34 + 2)),
    (5, 3, (3 * 34 + 2, 2 * 34 + 2)),
    (5, 1, (3 * 34 + 2, 2 * 34 + 2)),
    (10, 3, (4 * 34 + 2, 3 * 34 + 2)),
])
def test_save_grid_matches_make_grid_layout(tmp_path, n, channels, wh):
    """save_grid writes one RGB PNG laid out like make_grid(nrow=ceil(sqrt(n)), padding=2)."""
    batch = torch.zeros(n, channels, 32, 32)
    paths = ImageModality(channels, 32).save_grid(batch, tmp_path / "grid")
    assert paths == [tmp_path / "grid.png"]
    reference = make_grid(batch, nrow=math.ceil(math.sqrt(n)), padding=2)
    with Image.open(paths[0]) as img:
        assert img.mode == "RGB"
        assert img.size == wh == (reference.shape[2], reference.shape[1])
        assert img.getpixel((0, 0)) == (255, 255, 255)  # white gutter
        assert img.getpixel((2, 2)) == (128, 128, 128)  # first item, model value 0


@pytest.mark.parametrize(("n", "channels"), [(1, 1), (1, 3), (3, 1), (5, 3), (7, 3)])
def test_render_is_make_grid_to_the_value_without_torchvision(n, channels):
    batch = torch.rand(n, channels, 6, 5, generator=torch.Generator().manual_seed(n)) * 2 - 1
    nrow = math.ceil(math.sqrt(n))
    expected = to_uint8(make_grid(batch, nrow=nrow, padding=2, pad_value=1.0))
    assert np.array_equal(ImageModality(channels, 8).render(batch).data, expected)


def test_sampling_an_image_model_imports_neither_torchvision_nor_scikit_learn():
    import subprocess
    import sys

    code = ("import sys, diffusionkit_image.modality, diffusionkit_image.datasets; "
            "print(sorted(m for m in ('torchvision', 'sklearn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_save_grid_of_one_item_is_the_item(tmp_path):
    """Like make_grid, a batch of one is written as the bare item, without gutters."""
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    modality = ImageModality(3, 32)
    (path,) = modality.save_grid(x, tmp_path / "grid")
    assert Image.open(path).size == (32, 32)
    assert (modality.load(path) - x[0]).abs().max() <= 1 / 127


def test_render_is_uint8_hwc_image_grid():
    """render returns a Rendered 'image' of uint8 [H, W, 3]: items black, gutters white."""
    rendered = ImageModality(1, 32).render(torch.full((5, 1, 32, 32), -1.0))
    assert isinstance(rendered, Rendered)
    assert rendered.kind == "image"
    assert rendered.data.dtype == np.uint8
    assert rendered.data.shape == (2 * 34 + 2, 3 * 34 + 2, 3)
    assert (rendered.data[2:34, 2:34] == 0).all()
    assert (rendered.data[:2] == 255).all()
    assert (rendered.data[36:68, 70:102] == 255).all()  # the empty sixth cell is padding


def test_render_rejects_an_empty_batch():
    """render of zero items raises ValueError naming the shape."""
    with pytest.raises(ValueError, match=r"\(0, 3, 8, 8\)"):
        ImageModality(3, 8).render(torch.zeros(0, 3, 8, 8))


@pytest.mark.parametrize("channels", [0, 2, 4])
def test_rejects_unsupported_channel_counts(channels):
    """Only 1 (grey) and 3 (RGB) channels are accepted."""
    with pytest.raises(ValueError, match=f"got {channels}"):
        ImageModality(channels, 8)


@pytest.mark.parametrize(("size", "shape"), [(16, (3, 16, 16)), ([16, 24], (3, 16, 24))])
def test_shape_follows_size(size, shape):
    """An int size is a square, a pair is [height, width]; spatial rank is 2."""
    modality = ImageModality(3, size)
    assert modality.shape == shape
    assert modality.spatial_rank == 2

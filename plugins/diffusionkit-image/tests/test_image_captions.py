"""Shape captions, the named palette, and what ImageModality.describe measures of the drawn pixels."""

from __future__ import annotations

import hashlib

import pytest
import torch
from diffusionkit_image.captions import NAMED_COLOURS, SHAPE_NAMES, sentence
from diffusionkit_image.datasets import ShapesDataset
from diffusionkit_image.modality import ImageModality

from diffusionkit.prompt_checks import JUDGED_CLASS, WordMatch

POSITIONS = {"left", "right", "top", "bottom"}


def batch(dataset: ShapesDataset, count: int) -> tuple[torch.Tensor, list[list[str]]]:
    """The first ``count`` items of ``dataset`` as one tensor, and their captions' words."""
    items = [dataset[i] for i in range(count)]
    return torch.stack([item["x"] for item in items]), [item["caption"].split() for item in items]


def halves(measured: dict) -> set[str]:
    """The position words of a measured centroid."""
    return {"left" if measured["x"] < 0.5 else "right", "top" if measured["y"] < 0.5 else "bottom"}


# Recorded before captions and palettes existed: sha256 of items 0, 7, ..., 49 of a 50-item set (the
# grey one re-recorded when luminance moved to float64: a float32 matmul rounded differently on AVX2
# and AVX-512 processors, so the old digest held on one kind of CPU only).
@pytest.mark.parametrize(("kwargs", "digest"), [
    ({"size": 32}, "bc345963886079d697784ec2a0dd4487fd2315a91748a0880dd9b88e558937f8"),
    ({"size": [24, 40], "channels": 1, "seed": 3}, "ce265c42a2cc3fe3e080996bd9eab068a563ffc122d5e533391abc01d67d63bb"),
    ({"size": 16, "seed": 7}, "d97178c4ecec09c594e3f2469474aee060c7edc221cd74293532d606231a4f8a"),
])
def test_default_palette_images_are_unchanged(kwargs, digest):
    """The default (contrast) palette draws bit-identical images to the dataset before captions."""
    dataset = ShapesDataset(num_samples=50, **kwargs)
    sha = hashlib.sha256()
    for index in range(0, 50, 7):
        sha.update(dataset[index]["x"].numpy().tobytes())
    assert sha.hexdigest() == digest


def test_captions_do_not_change_images():
    """caption_keep draws from its own stream: the images are the same for any value."""
    full, bare = ShapesDataset(12, palette="named", caption_keep=1.0), ShapesDataset(12, palette="named",
                                                                                    caption_keep=0.0)
    assert all(torch.equal(full[i]["x"], bare[i]["x"]) for i in range(12))
    assert [bare[i]["caption"] for i in range(4)] == ["a circle", "a square", "a triangle", "a cross"]


@pytest.mark.parametrize("palette", ["contrast", "named"])
def test_caption_keep_one_has_every_word(palette):
    """With caption_keep=1 a caption names the size (outside the middle third), colour, shape and both halves."""
    dataset = ShapesDataset(60, palette=palette, caption_keep=1.0, seed=2)
    colours = set(NAMED_COLOURS) if palette == "named" else {"light", "dark"}
    for index in range(len(dataset)):
        params, words = dataset.params(index), dataset.caption(index).split()
        size = ["small"] if params.size < 1 / 3 else ["large"] if params.size > 2 / 3 else []
        assert words[:1 + len(size)] == ["a", *size] and len(words) == 5 + len(size)
        assert params.shape in words and len(colours & set(words)) == 1 and len(POSITIONS & set(words)) == 2


def test_captions_keep_each_word_about_as_often_as_asked():
    """Each optional word survives with probability caption_keep, deterministically per index."""
    dataset = ShapesDataset(400, palette="named", caption_keep=0.8)
    kept = [len(set(caption.split()) & set(NAMED_COLOURS)) for caption in dataset.captions]
    assert 0.74 < sum(kept) / len(kept) < 0.86
    assert dataset.captions == ShapesDataset(400, palette="named", caption_keep=0.8).captions
    assert dataset[-3]["caption"] == dataset.caption(397) == dataset.captions[397]


def test_named_captions_match_the_drawn_pixels():
    """describe() finds the caption's colour and quadrant in the pixels (>= 95 % of 40 items), and
    every small shape covers less area than every large one of its class."""
    dataset = ShapesDataset(40, palette="named", caption_keep=1.0, seed=1)
    xs, captions = batch(dataset, 40)
    measured = ImageModality().describe(xs)
    agree = [m["colour"] in words and halves(m) <= set(words) for m, words in zip(measured, captions)]
    assert sum(agree) >= 0.95 * len(agree)
    for shape in dataset.classes:
        areas = {size: [m["area"] for m, words in zip(measured, captions) if shape in words and size in words]
                 for size in ("small", "large")}
        assert max(areas["small"], default=0.0) < min(areas["large"], default=1.0)


def test_describe_one_channel_names_light_or_dark():
    """On grey images describe() says whether the shape is lighter or darker than its background."""
    xs, captions = batch(ShapesDataset(40, channels=1, caption_keep=1.0), 40)
    measured = ImageModality(channels=1).describe(xs)
    assert sum(m["colour"] in words and halves(m) <= set(words) for m, words in zip(measured, captions)) >= 38


def test_describe_a_blank_image():
    """No foreground: colour "none", the centre, no area."""
    assert ImageModality().describe(torch.zeros(1, 3, 8, 8)) == [{"colour": "none", "x": 0.5, "y": 0.5, "area": 0.0}]


def test_prompt_checks_use_the_caption_words():
    """Every check's prompts are made of words the named-palette captions use."""
    vocabulary = {word for caption in ShapesDataset(400, palette="named").captions for word in caption.split()}
    assert list(SHAPE_NAMES) == ShapesDataset(1).classes
    checks = ImageModality().prompt_checks()
    assert {check.descriptor for check in checks} == {"colour", JUDGED_CLASS, "x", "y"}
    for check in checks:
        assert isinstance(check, WordMatch)
        for word in check.words:
            assert set(check.template.format(word=word).split()) <= vocabulary


@pytest.mark.parametrize("kwargs", [{"palette": "rainbow"}, {"palette": "named", "channels": 1},
                                    {"caption_keep": 1.5}])
def test_shapes_rejects_bad_palette_arguments(kwargs):
    """Unknown palettes, a named palette in grey and a keep probability outside [0, 1] are refused."""
    with pytest.raises(ValueError, match="ShapesDataset"):
        ShapesDataset(**kwargs)


def test_sentence_uses_an_before_a_vowel():
    assert sentence(["", "orange", "circle"]) == "an orange circle" and sentence(["square"]) == "a square"

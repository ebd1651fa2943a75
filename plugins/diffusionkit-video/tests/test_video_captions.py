"""Video captions: the object and the motion they name match the rendered clips, and clips are unchanged."""

from __future__ import annotations

import colorsys
import hashlib

import numpy as np
import pytest
import torch
from diffusionkit_video.datasets import HUE_NAMES, MovingDigitsDataset, SpritesDataset, hue_name, motion_phrase

DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}  # word: (axis x/y, sign)


def centroid(frame: torch.Tensor) -> np.ndarray:
    """The ``(x, y)`` centroid in pixels of ``[C, H, W]``'s brightness above its median (the background)."""
    grey = frame.mean(dim=0)
    weight = (grey - grey.median()).clamp(min=0.0)
    rows, cols = torch.meshgrid(torch.arange(grey.shape[0]), torch.arange(grey.shape[1]), indexing="ij")
    return np.array([(weight * cols).sum().item(), (weight * rows).sum().item()]) / weight.sum().item()


def caption_matches_motion(x: torch.Tensor, caption: str) -> bool:
    """Whether the direction words of ``caption`` agree with the centroid shift of clip ``[C, T, H, W]``:
    each named direction has that sign and the larger shift's axis is named; "back and forth" means
    both shifts are small (under 10 % of the side, plus a pixel)."""
    shift = centroid(x[:, -1]) - centroid(x[:, 0])
    words = set(caption.split()) & set(DIRECTIONS)
    if "back and forth" in caption:
        return not words and np.abs(shift).max() < 0.1 * min(x.shape[-2:]) + 1.0
    named_axes = {DIRECTIONS[word][0] for word in words}
    signs_agree = all(np.sign(shift[axis]) == sign for axis, sign in (DIRECTIONS[word] for word in words))
    return signs_agree and int(np.argmax(np.abs(shift))) in named_axes


@pytest.mark.parametrize("make", [
    lambda: SpritesDataset(frames=16, size=32, channels=1, per_class=12, seed=0),
    lambda: SpritesDataset(frames=12, size=[24, 40], channels=3, per_class=8, seed=4),
    lambda: MovingDigitsDataset(frames=16, size=32, channels=1, per_class=5, seed=1),
])
def test_captions_name_the_object_and_its_motion(make):
    """Each caption names its class and the motion the clip shows (>= 95 % of clips)."""
    dataset = make()
    items = [dataset[i] for i in range(len(dataset))]
    assert all(dataset.classes[item["label"]] in item["caption"].split() for item in items)
    assert all(item["caption"].startswith(("a ", "digit ")) for item in items)
    agree = [caption_matches_motion(item["x"], item["caption"]) for item in items]
    assert sum(agree) >= 0.95 * len(agree)
    assert dataset.caption(3) == dataset.captions[3] == items[3]["caption"]


def test_sprite_colour_words_name_the_drawn_hue():
    """A coloured sprite's caption names the hue of its brightest pixels (within the word's sixth of
    the hue circle, give or take 0.02 for the 8-bit colours and the background at the edges)."""
    dataset = SpritesDataset(frames=2, size=32, channels=3, per_class=10, seed=0)
    for index in range(len(dataset)):
        frame = dataset[index]["x"][:, 0].add(1.0).div(2.0)
        bright = frame.amax(dim=0) > 0.75 * frame.amax()
        hue = colorsys.rgb_to_hsv(*frame[:, bright].mean(dim=1).tolist())[0]
        named = HUE_NAMES.index(dataset.caption(index).split()[1]) / len(HUE_NAMES)
        assert min(abs(hue - named), 1.0 - abs(hue - named)) < 1 / 12 + 0.02


# Recorded before captions existed: sha256 of the uint8 clips.
@pytest.mark.parametrize(("make", "digest"), [
    (lambda: SpritesDataset(per_class=5, frames=8), "470916b61daa1031dd1fe32d7b8636b083543c2f975fcff52935335bed814fd3"),
    (lambda: SpritesDataset(per_class=3, frames=6, channels=1, size=[24, 40], seed=2),
     "de494b80b2e326cfa3fca97159816f61cdee20d4425ad70dce3e109953e00da4"),
    (lambda: MovingDigitsDataset(per_class=3, frames=8),
     "89ade49f6116ea435d9909034f3fed25ad7954d3c0b7656793db75537b7188e7"),
])
def test_clips_are_unchanged(make, digest):
    assert hashlib.sha256(make().clips.numpy().tobytes()).hexdigest() == digest


def test_motion_phrase():
    """Both axes when the smaller shift is at least half the larger; a small shift names none."""
    assert motion_phrase(np.array([5.0, 1.0]), np.array([5.0, 5.5]), 32) == "moving left"
    assert motion_phrase(np.array([5.0, 1.0]), np.array([5.0, 2.0]), 32) == "moving up left"
    assert motion_phrase(np.array([5.0, 9.0, 6.0]), np.array([5.0, 7.0, 9.0]), 32) == "moving down"
    assert motion_phrase(np.array([5.0, 9.0, 6.0]), np.array([5.0, 7.0, 6.0]), 32) == "moving back and forth"
    assert motion_phrase(np.array([5.0]), np.array([5.0]), 32) == ""
    assert [hue_name(h) for h in (0.0, 0.97, 0.18, 0.68)] == ["red", "red", "yellow", "blue"]

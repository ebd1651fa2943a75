"""A bundle's recognizer (``diffusionkit recognizer``): trained, stored as data, refused when it
does not fit, and used by ``label=auto``. Here (not in the core's tests) because it learns the image
plugin's real digits with the image transforms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from diffusionkit.bundle import file_sha256, load_model
from diffusionkit.commands import run_command
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import Classifier
from diffusionkit.recognizer import PREFIX, recognizer_entries
from tests.untrained_bundle import untrained_bundle

CLASSES = [str(i) for i in range(10)]  # the digits dataset names its classes so
TINY = ["modality=image", "data=digits", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1", "modality.size=16"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return untrained_bundle(TINY, CLASSES, tmp_path_factory.mktemp("recognizer_base"))


def metadata_of(path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def with_recognizer(bundle, folder, classifier: Classifier, spec: dict):
    """A copy of ``bundle`` carrying ``classifier`` as its recognizer."""
    weights, extra = recognizer_entries(classifier, spec)
    path = folder / "model.safetensors"
    save_file({**load_file(str(bundle)), **weights}, str(path), metadata={**metadata_of(bundle), **extra})
    return path


def test_recognizer_takes_the_augmentations_named_on_the_command_line(bundle, tmp_path):
    path = run_command("recognizer", [f"ckpt={bundle}", f"out={tmp_path}", "epochs=1", "width=4", "draws=2",
                                      "augmentations=[flip]"])
    assert set(json.loads(metadata_of(path)[PREFIX])["augment"]) == {"flip"}


def always(label: int) -> Classifier:
    """A recognizer that names ``label`` for every input."""
    classifier = Classifier(2, 1, len(CLASSES), width=4)
    with torch.no_grad():
        classifier.head.weight.zero_()
        classifier.head.bias.zero_()
        classifier.head.bias[label] = 5.0
    return classifier


def test_recognizer_learns_the_models_data_and_leaves_the_base_bundle_alone(bundle, tmp_path):
    before = file_sha256(bundle)
    path = run_command("recognizer", [f"ckpt={bundle}", f"out={tmp_path}", "epochs=3", "width=8"])
    assert path == tmp_path / "model.safetensors"
    assert file_sha256(bundle) == before
    spec = json.loads(metadata_of(path)[PREFIX])
    assert spec["epochs"] == 3 and spec["width"] == 8 and spec["items"] == 1797 and spec["draws"] == 16
    assert set(spec["augment"]) == {"crop", "flip", "jitter"}
    loaded = load_model(path)
    assert loaded.recognizer is not None
    # the digits it learned from, recognised far above chance (10%)
    from diffusionkit_image.datasets import DigitsDataset

    data = DigitsDataset(size=16, channels=1)
    x = torch.stack([data[i]["x"] for i in range(0, len(data), 9)])
    truth = torch.tensor([int(data[i]["label"]) for i in range(0, len(data), 9)])
    heard = loaded.recognize(x)
    assert heard.shape == truth.shape
    assert (heard == truth).float().mean() > 0.6
    assert torch.equal(loaded.recognize(x), heard)  # the same augmented takes every time
    assert loaded.recognizer.draws == 16 and loaded.recognizer.augment is not None


def test_label_auto_uses_the_recognizer(bundle, tmp_path):
    path = with_recognizer(bundle, tmp_path, always(3), {"width": 4, "grid": 4})
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "in.png")
    out = run_command("vary", [f"ckpt={path}", f"input={tmp_path / 'in.png'}", f"out={tmp_path / 'vary'}", "n=1",
                               "steps=2", "label=auto"])
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["label_inferred"] == "3"
    assert load_model(bundle).recognizer is None  # without one, label=auto asks the diffusion model


@pytest.mark.parametrize("spec, message", [
    ({"width": 100000, "grid": 4}, "recognizer asks for width 100000"),
    ({"grid": 4}, "recognizer spec is not readable"),
    ({"width": 8, "grid": 4}, "do not fit its recognizer: recognizer."),
    ({"width": 4, "grid": 4, "draws": 1000, "augment": {"flip": {"p": 0.5}}}, "asks for 1000 augmented draws"),
    ({"width": 4, "grid": 4, "draws": 4, "augment": {"flip": {"p": "__import__('os')"}}}, "spec is not readable"),
    ({"width": 4, "grid": 4, "draws": 4, "augment": {"teleport": {}}}, "offers no transform 'teleport'"),
])
def test_a_recognizer_that_does_not_fit_is_refused_in_one_line(bundle, tmp_path, spec, message):
    path = with_recognizer(bundle, tmp_path, always(0), spec)  # its weights are width 4
    with pytest.raises(UsageError, match=message) as err:
        load_model(path)
    assert "\n" not in str(err.value)


def digit_folder(root, classes: dict[str, int]):
    """``root/<class>/<i>.png``: ``count`` grey 16x16 squares per class."""
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((16, 16), (20 * i + 10 * int(name)) % 256, np.uint8)).save(root / name / f"{i}.png")
    return root


def test_data_of_a_single_class_is_refused_in_one_line(bundle, tmp_path):
    root = digit_folder(tmp_path / "kit", {"3": 4, "33": 2})
    with pytest.raises(UsageError) as err:
        run_command("recognizer", [f"ckpt={bundle}", f"out={tmp_path / 'out'}", "data=folder",
                                   f"data.dataset.root={root}", "epochs=1", "width=4"])
    message = str(err.value)
    assert message.splitlines() == [message]
    assert "the data holds items of only one of the model's classes (3: 4; left out, as classes the model does not " \
           "have: " in message and "33" in message
    assert "at least two of: 0, 1, 2" in message and not (tmp_path / "out").exists()


def test_classes_without_items_are_named_in_a_warning(bundle, tmp_path, capsys):
    root = digit_folder(tmp_path / "kit", {"3": 4, "7": 4})
    run_command("recognizer", [f"ckpt={bundle}", f"out={tmp_path / 'out'}", "data=folder", f"data.dataset.root={root}",
                               "epochs=1", "width=4", "draws=2"])
    assert "warning: no items of 0, 1, 2, 4, 5, 6, 8, 9: the recogniser will hardly ever name them" in capsys.readouterr().out

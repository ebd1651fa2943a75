"""Images for diffusionkit: the ``image`` modality, built-in datasets and a sketch condition.

Kept light on purpose: importing this package does not import torch.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diffusionkit-image")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

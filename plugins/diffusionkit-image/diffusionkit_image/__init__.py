"""Images for diffusionkit: the ``image`` modality, built-in datasets and a sketch condition.

Kept light on purpose: importing this package does not import torch.
"""

from importlib.metadata import PackageNotFoundError, version

#: the diffusionkit plugin contract this plugin is written for (diffusionkit.modality.CONTRACT_VERSION).
DIFFUSIONKIT_CONTRACT = 1

try:
    __version__ = version("diffusionkit-image")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

"""Video for diffusionkit: the ``video`` modality, generated moving-sprite and moving-digit data.

Kept light on purpose: importing this package does not import torch or PyAV.
"""

from importlib.metadata import PackageNotFoundError, version

#: the diffusionkit plugin contract this plugin is written for (diffusionkit.modality.CONTRACT_VERSION).
DIFFUSIONKIT_CONTRACT = 1

try:
    __version__ = version("diffusionkit-video")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

"""A test-only diffusionkit plugin: the ``toy`` modality (.npy arrays of any rank) and the
``toy_blobs`` dataset, so that the core's tests need no built-in plugin. Never shipped.

Kept light on purpose: importing this package does not import torch.
"""

#: the diffusionkit plugin contract this plugin is written for (diffusionkit.modality.CONTRACT_VERSION).
DIFFUSIONKIT_CONTRACT = 1

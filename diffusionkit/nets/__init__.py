"""Dimension-generic networks: one code path builds 1-D, 2-D and 3-D models from ``spatial_rank``."""

from diffusionkit.nets.conditioning import ClassEmbedder, TimestepEmbedder, timestep_embedding
from diffusionkit.nets.unet import UNet

__all__ = ["UNet", "ClassEmbedder", "TimestepEmbedder", "timestep_embedding"]

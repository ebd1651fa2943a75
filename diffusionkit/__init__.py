"""diffusionkit: one diffusion core, one plugin per modality, Hydra to compose them."""

__version__ = "0.1.0"

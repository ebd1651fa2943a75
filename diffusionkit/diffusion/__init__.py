"""Diffusion math, modality-free: noise schedules, prediction targets and loss weights, the
denoiser contract (Karras et al. 2022), samplers over it, and guidance wrappers."""

from diffusionkit.diffusion.denoiser import Denoiser, VPDenoiser
from diffusionkit.diffusion.guidance import classifier_free_guidance, conditioned, inpainting, sdedit_start
from diffusionkit.diffusion.objectives import (
    PREDICTIONS,
    loss_weight,
    predicted_eps,
    predicted_x0,
    training_target,
    weighted_mse,
)
from diffusionkit.diffusion.samplers import SAMPLERS, get_sampler, invert_ddim
from diffusionkit.diffusion.schedules import NoiseSchedule, karras_sigmas, sigmas_for_steps

__all__ = [
    "PREDICTIONS",
    "SAMPLERS",
    "Denoiser",
    "NoiseSchedule",
    "VPDenoiser",
    "classifier_free_guidance",
    "conditioned",
    "get_sampler",
    "inpainting",
    "invert_ddim",
    "karras_sigmas",
    "loss_weight",
    "predicted_eps",
    "predicted_x0",
    "sdedit_start",
    "sigmas_for_steps",
    "training_target",
    "weighted_mse",
]

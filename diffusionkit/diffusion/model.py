"""One (latent) denoising diffusion model as a plain ``nn.Module``: loss, EMA, and sampling.

Training follows DDPM (Ho et al. 2020) with a choice of parameterization and loss weighting;
each named condition (:mod:`diffusionkit.nets.conditioners`: class labels, a sketch, a scalar...)
is dropped to its null value with its own probability, so classifier-free guidance (Ho &
Salimans 2022) can act on any subset of them; an
exponential moving average of the weights (Karras et al. 2024 discuss its value) is what
samples are drawn from. Sampling runs any sampler of :mod:`diffusionkit.diffusion.samplers`
over one denoiser, started from noise, part-way from an input (SDEdit) or with a known region.
With a frozen latent space (:class:`~diffusionkit.latent.LatentSpace`), all of this happens on
scaled latents (Rombach et al. 2022): data is encoded on the way in and decoded on the way out,
so callers always pass and receive data-space tensors.

Nothing here imports Lightning: a bundle loads into this class, and every sampling command
runs on it; ``diffusionkit.training.diffusion_module`` wraps it for training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from diffusionkit.diffusion import guidance, samplers
from diffusionkit.diffusion.denoiser import Denoiser, VPDenoiser
from diffusionkit.diffusion.noise import GAUSSIAN, GaussianNoise
from diffusionkit.diffusion.objectives import Parameterization, parameterization, weighted_mse
from diffusionkit.diffusion.schedules import NoiseSchedule, sigmas_for_steps
from diffusionkit.nets.conditioned_net import ConditionedNet, upgrade_legacy_names
from diffusionkit.nets.conditioners import CONCAT, LABEL, ClassLabel, Conditioner
from diffusionkit.nets.step_cache import conditions_fixed

if TYPE_CHECKING:
    from diffusionkit.latent import LatentSpace

#: the attribute a trainer keeps its DiffusionModel under: the prefix of its checkpoints' weights
TRAINER_PREFIX = "model."
#: the weights a DiffusionModel's state holds (a checkpoint written before the trainer wrapped
#: it has exactly these names, without :data:`TRAINER_PREFIX`)
MODEL_PARTS = ("net.", "ema.", "latent.")


class DiffusionModel(nn.Module):
    """Denoises model-space (or latent) data with ``net``, and samples from its EMA copy.

    Args:
        net: the denoising backbone, called as ``net(x_t, t, vector=, concat=, context=)``
            (see :class:`~diffusionkit.nets.conditioned_net.ConditionedNet`, which feeds it).
        schedule: the discrete noise schedule of the forward process.
        sample_shape: shape of one data item, ``(channels, *spatial)``.
        prediction: what the net predicts: ``eps``, ``x0`` or ``v`` (or a Parameterization).
        loss_weighting: ``uniform`` or ``min_snr`` (Hang et al. 2023).
        conditioners: the model's named conditions (class labels under ``"label"``); each is
            dropped to its null value with its own probability while training.
        ema_decay: the EMA's decay (reached after a warm-up, see :func:`ema_with_warmup`).
        ema: keep an EMA copy of the net (training); a model loaded only to sample needs none.
        clip_denoised: clamp each x0 prediction to this bound while sampling (None: off);
            right for data in [-1, 1], off for unbounded (latent) spaces.
        latent: a frozen latent space to diffuse in (None: diffuse in data space).
        noise_prior: the distribution of the forward process's noise, used for training and for
            every draw while sampling (None: independent Gaussian noise).
    """

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule,
        sample_shape: Sequence[int],
        prediction: str | Parameterization = "eps",
        loss_weighting: str = "uniform",
        min_snr_gamma: float = 5.0,
        conditioners: Mapping[str, Conditioner] | None = None,
        ema_decay: float = 0.999,
        clip_denoised: float | None = 1.0,
        latent: LatentSpace | None = None,
        noise_prior: GaussianNoise | None = None,
        ema: bool = True,
    ) -> None:
        super().__init__()
        self.parameterization = parameterization(prediction)
        if clip_denoised is not None:
            clip_denoised = float(clip_denoised)  # a stored config's value: a number, or this refuses it
        self.net = ConditionedNet(net, conditioners)
        self.schedule = schedule
        self.ema_decay = ema_decay
        self.ema: AveragedModel | None = None
        if ema:
            self.reset_ema()
        self.latent = latent
        self.data_shape = tuple(int(s) for s in sample_shape)
        #: the shape the diffusion runs in: the data's, or its latent's
        self.sample_shape = latent.latent_shape(self.data_shape) if latent is not None else self.data_shape
        self.loss_weighting = loss_weighting
        self.min_snr_gamma = min_snr_gamma
        self.clip_denoised = clip_denoised
        self.noise_prior = noise_prior if noise_prior is not None else GAUSSIAN
        #: the dtype the net runs in under autocast while sampling (None: its weights' own)
        self.autocast_dtype: torch.dtype | None = None

    @property
    def prediction(self) -> str:
        """The name of what the net predicts (``eps``, ``x0`` or ``v``)."""
        return self.parameterization.name

    @property
    def device(self) -> torch.device:
        """Where the model lives (the schedule's tables move with its weights)."""
        return self.schedule.alphas_cumprod.device

    # ------------------------------------------------------------------ conditions
    @property
    def conditioners(self) -> Mapping[str, Conditioner]:
        """The model's named conditions (see :mod:`diffusionkit.nets.conditioners`)."""
        return self.net.conditioners  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Number of classes of a class-conditional model (0: it has no class labels)."""
        label = self.conditioners[LABEL] if LABEL in self.conditioners else None
        return label.num_classes if isinstance(label, ClassLabel) else 0

    def _conditions(self, n: int, labels: Tensor | None = None, conditions: Mapping[str, Tensor] | None = None,
                    dropped: Collection[str] = ()) -> dict[str, Tensor]:
        """What the net is called with besides ``(x_t, t)`` for ``n`` items: each conditioner's
        values (class ``labels`` under ``"label"``; data-space ``concat`` signals resized to the
        diffusion space), its null value where absent or ``dropped``. The one place conditions
        reach the net."""
        values = dict(conditions or {})
        if labels is not None:
            values[LABEL] = labels
        unknown = sorted(set(values) - set(self.conditioners))
        if unknown:
            raise ValueError(f"unknown conditions {unknown}; this model's are {sorted(self.conditioners)}")
        out: dict[str, Tensor] = {}
        for name, conditioner in self.conditioners.items():
            value = values.get(name)
            if value is None or name in dropped:
                out[name] = conditioner.null_value(n, self.sample_shape, self.device)
            else:
                value = value.to(self.device)
                out[name] = self.match_spatial(value) if conditioner.kind == CONCAT else value
        return out

    def conditions_from_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every conditioner's values for a clean batch, as given (nothing dropped)."""
        return {name: conditioner.from_batch(batch) for name, conditioner in self.conditioners.items()}

    def _training_conditions(self, batch: dict[str, Tensor], x0: Tensor,
                             generator: torch.Generator | None) -> dict[str, Tensor]:
        """The batch's conditions, each item's dropped to its null value with its conditioner's
        probability while training (for classifier-free guidance)."""
        conditions = self._conditions(len(x0), conditions=self.conditions_from_batch(batch))
        if not self.training:
            return conditions
        for name, conditioner in self.conditioners.items():
            if conditioner.drop > 0:
                values = conditions[name]
                device = generator.device if generator is not None else values.device
                dropped = (torch.rand((len(values),), generator=generator, device=device) < conditioner.drop)
                conditions[name] = conditioner.drop_values(values, dropped.to(values.device), self.sample_shape)
        return conditions

    # ------------------------------------------------------------------ training
    def loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """The weighted denoising loss on one batch (noise levels drawn uniformly).

        The batch holds data ``"x"``, or pre-encoded latents ``"z"`` (a latent cache)."""
        x0 = batch["z"] if "z" in batch else self.to_diffusion_space(batch["x"])
        t = torch.randint(0, self.schedule.num_timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = self.noise_prior.sample(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.schedule.add_noise(x0, noise, t)
        output = self.net(x_t, t, **self._training_conditions(batch, x0, generator))
        target = self.parameterization.target(x0, noise, *self.schedule.alpha_sigma_like(t, x0))
        weight = self.parameterization.loss_weight(self.loss_weighting, self.schedule.snr(t), self.min_snr_gamma)
        return weighted_mse(output, target, weight.to(output.dtype))

    def reset_ema(self) -> None:
        """Start the EMA afresh from the current weights (e.g. once layers were added to the net)."""
        self.ema = AveragedModel(self.net, multi_avg_fn=ema_with_warmup(self.ema_decay), use_buffers=True)
        self.ema.requires_grad_(False)  # updated from the weights, never by gradients (DDP would wait for them)

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the EMA weights one step towards the current ones."""
        if self.ema is None:
            raise RuntimeError("this model was built without an EMA (ema=False); call reset_ema() to start one")
        self.ema.update_parameters(self.net)

    @property
    def sampling_net(self) -> nn.Module:
        """The net that samples: the EMA's, or the net itself in a model built without one
        (``ema=False``: a bundle loaded to sample holds the EMA weights as its net)."""
        return self.net if self.ema is None else self.ema.module

    # ------------------------------------------------------------------ latent space
    @torch.no_grad()
    def to_diffusion_space(self, x: Tensor) -> Tensor:
        """Data -> the space the diffusion runs in (scaled latents, or the data itself)."""
        return x if self.latent is None else self.latent.encode(x)

    @torch.no_grad()
    def to_data_space(self, z: Tensor) -> Tensor:
        return z if self.latent is None else self.latent.decode(z)

    def mask_to_diffusion_space(self, mask: Tensor) -> Tensor:
        """A data-space mask (1 = known) for the diffusion space: in latent space a position is
        known where any channel of its area is (then resized), so it spans all latent channels."""
        if self.latent is None:
            return mask
        return self.match_spatial(mask.amax(dim=1, keepdim=True).float()).gt(0.5).to(mask.dtype)

    def match_spatial(self, signal: Tensor) -> Tensor:
        """Resize a data-space signal (a condition or mask) to the diffusion space's spatial size
        by area averaging; a no-op in data space."""
        size = tuple(self.sample_shape[1:])
        return signal if tuple(signal.shape[2:]) == size else F.interpolate(signal, size=size, mode="area")

    # ------------------------------------------------------------------ sampling
    def denoiser(self, use_ema: bool = True) -> VPDenoiser:
        """The network as a k-diffusion style denoiser ``D(x, sigma, **cond) -> x0``."""
        net = self.sampling_net if use_ema else self.net
        return VPDenoiser(net, self.schedule, self.parameterization, autocast=self.autocast_dtype)

    def guided_conditions(self, labels: Tensor | None, conditions: Mapping[str, Tensor] | None,
                          guide: Collection[str] | None = None) -> set[str]:
        """The conditions classifier-free guidance acts on: ``guide`` (checked), or by default
        every given condition that was dropped in training (so has a learned null)."""
        given = {name for name, value in (conditions or {}).items() if value is not None}
        given |= {LABEL} if labels is not None else set()
        if guide is None:
            return {name for name in given if name in self.conditioners and self.conditioners[name].drop > 0}
        guide = set(guide)
        for name in sorted(guide):
            if name not in self.conditioners:
                raise ValueError(f"cannot guide on '{name}': this model's conditions are {sorted(self.conditioners)}")
            if self.conditioners[name].drop == 0:
                raise ValueError(f"cannot guide on '{name}': the model was trained with it always given (drop=0)")
            if name not in given:
                raise ValueError(f"cannot guide on '{name}': no {name} was given")
        return guide

    def _guided(self, n: int, labels: Tensor | None, conditions: Mapping[str, Tensor] | None, guidance_scale: float,
                use_ema: bool, guide: Collection[str] | None = None,
                negatives: Mapping[str, Tensor] | None = None) -> Denoiser:
        cond = self._conditions(n, labels, conditions)
        guided = self.guided_conditions(labels, conditions, guide)
        denoiser = self.denoiser(use_ema)
        if not guided or guidance_scale == 1.0:
            if negatives:
                raise ValueError(f"negative conditions {sorted(negatives)} need guidance on them (guidance > 1)")
            denoiser = guidance.conditioned(denoiser, cond)
        else:
            uncond = self._conditions(n, labels, conditions, dropped=guided)
            for name, value in (negatives or {}).items():
                if name not in guided:
                    raise ValueError(f"a negative {name} needs guidance on '{name}' (guided: {sorted(guided)})")
                uncond[name] = value.to(self.device)
            denoiser = guidance.classifier_free_guidance(denoiser, cond, uncond, guidance_scale)
        return denoiser if self.clip_denoised is None else guidance.clipped(denoiser, self.clip_denoised)

    @torch.no_grad()
    @conditions_fixed()
    def sample(
        self,
        n: int,
        labels: Tensor | None = None,
        *,
        sampler: str = "dpmpp_2m",
        steps: int = 20,
        spacing: str = "karras",
        guidance_scale: float = 1.0,
        sampler_options: dict[str, Any] | None = None,
        conditions: Mapping[str, Tensor] | None = None,
        guide: Collection[str] | None = None,
        negatives: Mapping[str, Tensor] | None = None,
        init: Tensor | None = None,
        strength: float = 1.0,
        known: Tensor | None = None,
        mask: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        use_ema: bool = True,
    ) -> Tensor:
        """Draw ``n`` data items ``[n, *data_shape]``; every tensor argument is in data space.

        ``labels`` ([n] long) conditions on classes and ``conditions`` on the model's other
        named conditions (data-space values); ``guidance_scale`` guides on ``guide`` (default:
        the given conditions that were dropped in training, see :meth:`guided_conditions`);
        ``negatives`` replace the null value of guided conditions in the unconditional branch
        (a negative prompt: guidance then steers away from it);
        ``init`` with ``strength`` < 1 starts part-way from that data (SDEdit);
        ``known`` and ``mask`` (1 = keep) keep a region of ``known`` at every step;
        ``noise`` replaces the random start (e.g. the result of :meth:`invert` with the same
        ``steps``, ``spacing`` and ``strength``: sampling then runs that part of the schedule).
        """
        sample_fn = samplers.get_sampler(sampler)
        device = self.device
        shape = (n, *self.sample_shape)
        sigmas = sigmas_for_steps(self.schedule, steps, spacing).to(device)
        denoiser = self._guided(n, labels, conditions, guidance_scale, use_ema, guide, negatives)
        # One draw serves the start and the known region, so that under a correlated prior the
        # known part's noise is correlated with the rest exactly as in training.
        start_noise = self.noise_prior.sample(shape, generator=generator, device=device)
        if known is not None and mask is not None:
            denoiser = guidance.inpainting(denoiser, self.to_diffusion_space(known.to(device)),
                                           self.mask_to_diffusion_space(mask.to(device)), start_noise)
        if noise is not None:
            x, sigmas = noise.to(device), guidance.strength_tail(sigmas, strength)
        elif init is not None:
            x, sigmas = guidance.sdedit_start(self.to_diffusion_space(init.to(device)), sigmas, strength, start_noise)
        else:
            x = start_noise * sigmas[0]
        z = sample_fn(denoiser, x, sigmas, generator=generator, noise_prior=self.noise_prior,
                      **(sampler_options or {}))
        return self.to_data_space(z)

    @torch.no_grad()
    @conditions_fixed()
    def infer_labels(self, x0: Tensor, levels: int = 6, seed: int = 0, use_ema: bool = True) -> Tensor | None:
        """The class of each data item ``[n, *data_shape]`` by the diffusion classifier of Li et al.
        2023 ("Your Diffusion Model is Secretly a Zero-Shot Classifier"): the label under which the
        denoiser predicts the added noise best, summed over ``levels`` noise levels with the same
        noise for every class. An unconditional model returns None."""
        if not self.num_classes:
            return None
        chunk = max(1, 64 // self.num_classes)  # every item is run under every class at once
        if len(x0) > chunk:
            return torch.cat([self.infer_labels(part, levels, seed, use_ema) for part in x0.split(chunk)])
        z0 = self.to_diffusion_space(x0.to(self.device))
        sigmas = sigmas_for_steps(self.schedule, levels + 1, "linspace")[1:-1].to(self.device)
        noise = self.noise_prior.sample((len(sigmas) * len(z0), *z0.shape[1:]), device=self.device,
                                        generator=torch.Generator(device=self.device).manual_seed(seed))
        noise = noise.view(len(sigmas), *z0.shape)
        denoiser = self.denoiser(use_ema)
        n, classes = len(z0), self.num_classes
        labels = torch.arange(classes, device=self.device).repeat_interleave(n)  # every item under every class
        conditions = self._conditions(len(labels), labels)
        errors = torch.zeros(classes * n, device=self.device)
        for sigma, eps in zip(sigmas, noise):
            x = (z0 + sigma * eps).repeat(classes, *[1] * (z0.ndim - 1))
            eps_hat = (x - denoiser(x, sigma.expand(len(x)), **conditions)) / sigma
            errors += (eps_hat - eps.repeat(classes, *[1] * (z0.ndim - 1))).square().flatten(1).mean(1)
        return errors.view(classes, n).argmin(0).cpu()

    @torch.no_grad()
    @conditions_fixed()
    def invert(
        self,
        x0: Tensor,
        labels: Tensor | None = None,
        *,
        steps: int = 50,
        spacing: str = "trailing",
        conditions: Mapping[str, Tensor] | None = None,
        strength: float = 1.0,
        use_ema: bool = True,
    ) -> Tensor:
        """Deterministic DDIM inversion (Song et al. 2021): data -> the noisy latent (diffusion
        space) that regenerates it through ``sample(noise=..., strength=...)`` with the same
        ``steps`` and ``spacing``. ``strength`` < 1 inverts only the first part of the schedule."""
        sigmas = guidance.strength_tail(sigmas_for_steps(self.schedule, steps, spacing), strength).to(self.device)
        denoiser = self._guided(x0.shape[0], labels, conditions, 1.0, use_ema)
        return samplers.invert_ddim(denoiser, self.to_diffusion_space(x0.to(self.device)), sigmas)


def ema_with_warmup(decay: float) -> Callable[[list[Tensor], list[Tensor], Tensor | int], None]:
    """EMA update whose decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first
    updates (the warm-up of Tarvainen & Valpola 2017's mean teacher, used by diffusers), so a
    short run's average is not dominated by the initial weights."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor | int) -> None:
        n = float(num_averaged)
        beta = min(decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(averaged, current, 1.0 - beta)

    return update


def model_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A DiffusionModel's weights from a trainer's state dict: names under :data:`TRAINER_PREFIX`
    lose it; a state written before the trainer wrapped the model (no prefix) is returned as it is."""
    if not any(k.startswith(TRAINER_PREFIX) for k in state):
        return dict(state)
    return {k.removeprefix(TRAINER_PREFIX): v for k, v in state.items() if k.startswith(TRAINER_PREFIX)}


def trainer_state(state: dict[str, Any]) -> dict[str, Any]:
    """A trainer's state dict from one written before the trainer wrapped the model (the model's
    parts at the top level get :data:`TRAINER_PREFIX`) or before conditioners were parts of the
    net (:func:`~diffusionkit.nets.conditioned_net.upgrade_legacy_names`); a current one is
    returned as it is."""
    if not any(k.startswith(TRAINER_PREFIX) for k in state):
        state = {(TRAINER_PREFIX + k if k.startswith(MODEL_PARTS) else k): v for k, v in state.items()}
    for net in ("net.", "ema.module."):  # and a net's from before conditioners were parts
        state = upgrade_legacy_names(state, TRAINER_PREFIX + net)
    return dict(state)

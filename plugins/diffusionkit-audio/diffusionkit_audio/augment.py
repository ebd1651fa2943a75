"""Audio augmentations in model space (the core's ``augment=`` applies them while training).

Each changes one item ``[C, bins, frames]`` the way a different take of the same sound would: a
level (gain), a tone (EQ tilt), a slightly later onset (time shift), a slightly different tuning
(pitch shift, on the mel scale only) or a little background noise. The default strengths keep a
drum a drum; options change them (``augment.transforms.gain.db=3``).
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor

from .codecs import Codec, MelCodec


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


def _offset(generator: torch.Generator, most: int) -> int:
    return int(torch.randint(-most, most + 1, (), generator=generator))


def gain(codec: Codec, x: Tensor, generator: torch.Generator, db: float = 6.0) -> Tensor:
    """The whole item louder or softer by up to ``db``."""
    return codec.scale_db(x, torch.tensor(_uniform(generator, -db, db)))


def eq_tilt(codec: Codec, x: Tensor, generator: torch.Generator, db: float = 6.0) -> Tensor:
    """Brighter or darker: a level ramp over the bins from ``-t/2`` to ``+t/2``, ``|t| <= db``."""
    tilt = _uniform(generator, -db, db)
    ramp = torch.linspace(-tilt / 2, tilt / 2, x.shape[-2]).unsqueeze(-1)
    return codec.scale_db(x, ramp)


def time_shift(silence: float, x: Tensor, generator: torch.Generator, frames: int = 2) -> Tensor:
    """The sound starts up to ``frames`` frames later (the end is cut, the start is silence)."""
    shift = abs(_offset(generator, frames))
    if shift == 0:
        return x
    start = torch.full_like(x[..., :shift], silence)
    return torch.cat([start, x[..., :-shift]], dim=-1)


def pitch_shift(x: Tensor, generator: torch.Generator, bins: int = 1) -> Tensor:
    """Every component up or down by up to ``bins`` mel bands (edge bands repeated)."""
    shift = _offset(generator, bins)
    if shift == 0:
        return x
    if shift > 0:
        return torch.cat([x[..., :1, :].expand(*x.shape[:-2], shift, x.shape[-1]), x[..., :-shift, :]], dim=-2)
    return torch.cat([x[..., -shift:, :], x[..., -1:, :].expand(*x.shape[:-2], -shift, x.shape[-1])], dim=-2)


def noise(codec: MelCodec, x: Tensor, generator: torch.Generator, db: float = -45.0) -> Tensor:
    """A faint noise floor, ``db`` (relative to the codec's ceiling) at its loudest."""
    level = _uniform(generator, codec.floor_db, codec.ceiling_db + db)
    power = 10.0 ** (codec.power_db(x) / 10.0) * (x > -1.0)
    floor = 10.0 ** (level / 10.0) * torch.rand(x.shape, generator=generator)
    return codec.from_power_db(10.0 * torch.log10((power + floor).clamp_min(1e-12)))


def audio_transforms(codec: Codec) -> dict[str, Callable[..., Tensor]]:
    """The transforms this codec's model space supports, by name."""
    silence = -1.0 if isinstance(codec, MelCodec) else 0.0
    transforms: dict[str, Callable[..., Tensor]] = {
        "gain": partial(gain, codec), "eq_tilt": partial(eq_tilt, codec), "time_shift": partial(time_shift, silence)}
    if isinstance(codec, MelCodec):
        transforms.update(pitch_shift=pitch_shift, noise=partial(noise, codec))
    return transforms

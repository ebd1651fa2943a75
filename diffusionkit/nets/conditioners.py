"""Conditioners: named parts that turn one condition's values into what a denoising net consumes.

After the conditioner idea of Stability's generative-models (``sgm``): each condition of a
model is one module with its own drop probability for classifier-free guidance (Ho & Salimans
2022), and produces one of three things (:data:`VECTOR`, :data:`CONCAT`, :data:`SEQUENCE`):

- a vector added to the net's time embedding (class labels, a scalar such as loudness),
- channels concatenated to the net's input (a sketch, a low-resolution image),
- a token sequence the net attends to by cross-attention (Rombach et al. 2022; a text prompt).

"No condition" is itself a value (:meth:`Conditioner.null_value`: the null class, zeros...), so
a dropped or unguided condition travels through samplers and guidance as a tensor like any other.
A plugin, a config (``conditioners.<name>``) or a test adds a conditioner by subclassing
:class:`Conditioner`; the core needs no change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import Tensor, nn

from diffusionkit.errors import UsageError
from diffusionkit.nets.conditioning import ClassEmbedder, timestep_embedding

if TYPE_CHECKING:
    from diffusionkit.modality import ConcatCondition, Modality

Kind = Literal["vector", "concat", "sequence"]
VECTOR: Kind = "vector"
CONCAT: Kind = "concat"
SEQUENCE: Kind = "sequence"
#: the name of the class-label conditioner (a dataset's ``"label"``), which the core fills itself
LABEL = "label"


class Conditioner(nn.Module, ABC):
    """One condition of a model: its values -> what the net consumes (see the module docstring).

    Args:
        drop: the probability of replacing an item's value by :meth:`null_value` while training,
            so that one net learns the conditional and unconditional models that classifier-free
            guidance combines. 0: the condition is always given and cannot be guided.
    """

    #: what the output is: a vector for the time embedding, channels, or a token sequence
    kind: ClassVar[Kind]
    #: what a command's ``<name>=`` takes, in a usage line
    input_hint: ClassVar[str] = "NUMBER"

    def __init__(self, drop: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(drop) <= 1.0:
            raise ValueError(f"a conditioner's drop probability must lie in [0, 1], got {drop}")
        self.drop = float(drop)
        #: the model's name for this condition (its key in a batch and on the command line)
        self.name = ""

    @property
    def width(self) -> int:
        """Channels (:data:`CONCAT`) or token width (:data:`SEQUENCE`) of the output; a
        :data:`VECTOR` conditioner has the net's embedding width, given to :meth:`bind`."""
        raise NotImplementedError(f"{type(self).__name__} declares no width")

    def use_modality(self, modality: Modality) -> None:
        """Called once with the run's modality when the model is built, before :meth:`bind` (a
        conditioner that derives its values from data as the modality would); default: nothing."""

    def bind(self, embedding_dim: int) -> None:
        """Called once with the net's time-embedding width before any weights load: a
        :data:`VECTOR` conditioner (or one with a :meth:`pooled` vector) builds those layers here."""

    def pooled(self, values: Tensor) -> Tensor | None:
        """A vector ``[n, embedding_dim]`` added to the time embedding besides the main output
        (a sequence's pooled summary, as Imagen adds its pooled text embedding); None: none."""
        return None

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        """The values of one training batch (default: the batch's entry under :attr:`name`)."""
        if self.name not in batch:
            raise ValueError(f"the condition '{self.name}' is not in the training batch (keys: {sorted(batch)})")
        return batch[self.name]

    def read_input(self, text: str, modality: Modality) -> Tensor:
        """One item's value from a command's ``<name>=...`` (default: a number)."""
        try:
            return torch.tensor(float(text))
        except ValueError:
            raise UsageError(f"{self.name}={text!r} is not a number; pass {self.name}=NUMBER") from None

    @abstractmethod
    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        """The value meaning "no condition" for ``n`` items of ``item_shape`` (the diffusion
        space's ``(channels, *spatial)``)."""

    def drop_values(self, values: Tensor, dropped: Tensor, item_shape: tuple[int, ...]) -> Tensor:
        """``values`` with the items where ``dropped`` ([n] bool) replaced by the null value."""
        null = self.null_value(len(values), item_shape, values.device).to(values.dtype)
        return torch.where(dropped.view(-1, *(1,) * (values.dim() - 1)), null, values)

    @abstractmethod
    def forward(self, values: Tensor) -> Tensor:
        """``[n, ...]`` values (null values included) -> ``[n, embedding_dim]`` (vector),
        ``[n, width, *spatial]`` (concat) or ``[n, tokens, width]`` (sequence).

        A pure function of ``values`` when sampling (nothing drawn at random in eval mode): a
        sampling run computes it once and reuses it at every step
        (:mod:`diffusionkit.nets.step_cache`), as it does :meth:`pooled`."""


class ClassLabel(Conditioner):
    """Class indices -> learned embeddings; index ``num_classes`` is the null class (Ho &
    Salimans 2022). The weights are a :class:`~diffusionkit.nets.conditioning.ClassEmbedder`."""

    kind = VECTOR

    def __init__(self, num_classes: int, drop: float = 0.1) -> None:
        super().__init__(drop)
        if num_classes < 1:
            raise ValueError(f"a class-label conditioner needs at least one class, got {num_classes}")
        self.num_classes = int(num_classes)
        self.embedder: ClassEmbedder | None = None

    def bind(self, embedding_dim: int) -> None:
        self.embedder = ClassEmbedder(self.num_classes, embedding_dim)

    @torch.no_grad()
    def resize(self, num_classes: int) -> None:
        """Make room for ``num_classes`` >= today's classes: each one keeps its index and its
        embedding, the null class moves to the new last index, and each new class starts from
        the null class's embedding ("no class yet")."""
        if self.embedder is None or num_classes < self.num_classes:
            raise ValueError(f"can only add classes to a bound class-label conditioner "
                             f"({self.num_classes} -> {num_classes})")
        old = self.embedder.embedding.weight
        table = old[-1:].repeat(num_classes + 1, 1)
        table[: self.num_classes] = old[:-1]
        self.embedder = ClassEmbedder(num_classes, old.shape[1]).to(old.device, old.dtype)
        self.embedder.embedding.weight.copy_(table)
        self.num_classes = num_classes

    def read_input(self, text: str, modality: Modality) -> Tensor:
        raise UsageError("class labels are named with label=<class name>")

    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        return torch.full((n,), self.num_classes, dtype=torch.long, device=device)

    def forward(self, values: Tensor) -> Tensor:
        if self.embedder is None:
            raise RuntimeError("ClassLabel.bind(embedding_dim) was never called")
        return self.embedder(values)


class ScalarEmbedding(Conditioner):
    """A number per item (loudness, a pitch, a duration...) -> sinusoidal features of the number
    scaled by ``scale`` -> MLP, as for the time step (Ho et al. 2020); a learned null vector stands
    for "no value" (items whose value is NaN)."""

    kind = VECTOR

    def __init__(self, drop: float = 0.1, scale: float = 1000.0, features: int = 64) -> None:
        super().__init__(drop)
        self.scale = float(scale)
        self.features = int(features)
        self.mlp: nn.Sequential | None = None
        self.null: nn.Parameter | None = None

    def bind(self, embedding_dim: int) -> None:
        self.mlp = nn.Sequential(nn.Linear(self.features, embedding_dim), nn.SiLU(),
                                 nn.Linear(embedding_dim, embedding_dim))
        self.null = nn.Parameter(torch.zeros(embedding_dim))

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        return super().from_batch(batch).float()  # whole numbers too: their null is NaN

    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        return torch.full((n,), float("nan"), device=device)

    def forward(self, values: Tensor) -> Tensor:
        if self.mlp is None or self.null is None:
            raise RuntimeError("ScalarEmbedding.bind(embedding_dim) was never called")
        values = values.reshape(-1).float()
        missing = values.isnan()
        features = timestep_embedding(torch.where(missing, 0.0, values) * self.scale, self.features)
        embedded = self.mlp(features.to(self.mlp[0].weight.dtype))
        return torch.where(missing[:, None], self.null.to(embedded.dtype), embedded)


class ConcatSignal(Conditioner):
    """A signal concatenated to the net's input channels, derived from each clean batch and read
    from a user's file by a :class:`~diffusionkit.modality.ConcatCondition` (a sketch of an image).
    Values arrive at the data's spatial size; the model resizes them to the diffusion space's.
    The null value is zeros; with ``drop=0`` (the default) the signal is always required."""

    kind = CONCAT
    input_hint = "FILE"

    def __init__(self, source: ConcatCondition, drop: float = 0.0) -> None:
        super().__init__(drop)
        self.source = source

    @property
    def width(self) -> int:
        return int(self.source.channels)

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        if "x" not in batch:
            raise ValueError("a concatenated condition is derived from data: it cannot train from a latent cache")
        return self.source.from_data(batch["x"])

    def read_input(self, text: str, modality: Modality) -> Tensor:
        return self.source.load(text, modality)

    def forward(self, values: Tensor) -> Tensor:
        return values

    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        if self.drop == 0:
            raise ValueError(f"this model is conditioned on a {self.name} and was trained with it always "
                             f"given: pass {self.name}=FILE")
        return torch.zeros((n, self.width, *item_shape[1:]), device=device)


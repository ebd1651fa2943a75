"""A text prompt as a condition: a frozen text encoder's token states for cross-attention, and
their mean (sentence-transformers' pooling, Reimers & Gurevych 2019) added to the time embedding,
as in latent diffusion's text-to-image models (Rombach et al. 2022) and Imagen's pooled text
embedding (Saharia et al. 2022).

Values are the encoder's ``[n, max_tokens, width]`` token states, zero vectors past each text's
end (:mod:`diffusionkit.text_encoders`); all zeros is "no prompt" (the null value, what caption
dropout trains for classifier-free guidance). Padding and a missing prompt become learned
tokens, so the net attends to a fixed-length context without a mask (as Stable Diffusion does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from diffusionkit.errors import UsageError
from diffusionkit.nets.conditioners import SEQUENCE, Conditioner
from diffusionkit.nets.layers import zero_module

if TYPE_CHECKING:
    from diffusionkit.modality import Modality
    from diffusionkit.text_encoders import TextEncoder

#: the dataset item key holding an item's caption
CAPTION = "caption"


class TextPrompt(Conditioner):
    """Prompts or captions through a frozen :class:`~diffusionkit.text_encoders.TextEncoder`
    (given by :meth:`use_text_encoder` when the model is built; its weights are never stored).

    Args:
        drop: the caption dropout probability (classifier-free guidance on the prompt).
        caption_key: the training batch's key holding each item's caption.
    """

    kind = SEQUENCE
    input_hint = '"TEXT"'
    needs_text_encoder = True

    def __init__(self, drop: float = 0.1, caption_key: str = CAPTION) -> None:
        super().__init__(drop)
        self.caption_key = str(caption_key)
        self.encoder: TextEncoder | None = None
        self.norm: nn.LayerNorm | None = None
        self.pad: nn.Parameter | None = None
        self.pool: nn.Sequential | None = None
        self.null: nn.Parameter | None = None
        self._width = 0

    def use_text_encoder(self, encoder: TextEncoder) -> None:
        """Attach the frozen encoder and build the layers that read its token states."""
        self.encoder, self._width = encoder, int(encoder.width)
        self.norm = nn.LayerNorm(self._width)
        self.pad = nn.Parameter(torch.zeros(self._width))

    @property
    def width(self) -> int:
        if not self._width:
            raise RuntimeError("TextPrompt.use_text_encoder(encoder) was never called")
        return self._width

    def bind(self, embedding_dim: int) -> None:
        # zero-initialised output, like the cross-attention's: a net that gains a prompt starts as it was
        self.pool = nn.Sequential(nn.Linear(self.width, embedding_dim), nn.SiLU(),
                                  zero_module(nn.Linear(embedding_dim, embedding_dim)))
        self.null = nn.Parameter(torch.zeros(embedding_dim))

    def _encoder(self) -> TextEncoder:
        if self.encoder is None:
            raise RuntimeError("TextPrompt.use_text_encoder(encoder) was never called")
        return self.encoder

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        captions = batch.get(self.caption_key)
        if captions is None:
            raise UsageError(f"a text-conditioned model trains on captions, and the training data has none (no "
                             f"'{self.caption_key}' in its items): use a dataset that writes captions, or a data "
                             "folder with a NAME.txt beside each file or a captions.csv")
        return self._encoder().encode(list(captions))

    def read_input(self, text: str, modality: Modality) -> Tensor:
        return self._encoder().encode([text])[0]

    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        encoder = self._encoder()
        return torch.zeros((n, encoder.max_tokens, self.width), device=device)

    def forward(self, values: Tensor) -> Tensor:
        if self.norm is None or self.pad is None:
            raise RuntimeError("TextPrompt.use_text_encoder(encoder) was never called")
        present = values.ne(0).any(dim=-1, keepdim=True)  # [n, L, 1]
        return torch.where(present, self.norm(values), self.pad.to(values.dtype))

    def pooled(self, values: Tensor) -> Tensor:
        if self.pool is None or self.null is None:
            raise RuntimeError("TextPrompt.bind(embedding_dim) was never called")
        mean, count = token_mean(values)
        embedded = self.pool(mean.to(self.pool[0].weight.dtype))
        return torch.where(count > 0, embedded, self.null.to(embedded.dtype))


def token_mean(values: Tensor) -> tuple[Tensor, Tensor]:
    """The mean of each text's token states ``[n, L, width]`` over its tokens (zero vectors are
    padding), ``[n, width]``, and its token count ``[n, 1]`` (sentence-transformers' pooling)."""
    present = values.ne(0).any(dim=-1, keepdim=True).to(values.dtype)  # [n, L, 1]
    count = present.sum(dim=1)  # [n, 1]
    return (values * present).sum(dim=1) / count.clamp(min=1), count

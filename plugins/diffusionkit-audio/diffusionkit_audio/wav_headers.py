"""How much sound a WAV or AIFF header promises, against what the file holds.

libsndfile quietly shortens a file whose sample data is cut off to the frames that are there, so
a download or copy that stopped early reads as a click. :func:`truncation` finds such files from
their chunk headers alone (no sample is decoded).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: data sizes that mean "unknown length" (a stream written without seeking back).
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
#: (magic, form types, byte order, sample-data chunk, bytes before the samples inside it)
_LAYOUTS = (
    (b"RIFF", (b"WAVE",), "<", b"data", 0),
    (b"RIFX", (b"WAVE",), ">", b"data", 0),
    (b"FORM", (b"AIFF", b"AIFC"), ">", b"SSND", 8),  # SSND: offset and block size, then samples
)


@dataclass(frozen=True)
class Truncation:
    """A file whose sample data stops before its header says it ends."""

    container: str  # "WAV" or "AIFF"
    promised_bytes: int
    held_bytes: int
    bytes_per_frame: int  # 0 when the header does not say

    def seconds(self, byte_count: int, sample_rate: int) -> float:
        """``byte_count`` bytes of samples as seconds (0 when the frame size is unknown)."""
        return byte_count / (self.bytes_per_frame * sample_rate) if self.bytes_per_frame and sample_rate else 0.0


def _frame_bytes(chunk: bytes, chunk_id: bytes, order: str) -> int:
    """Bytes per frame from a ``fmt `` chunk (its block align) or a ``COMM`` chunk (channels x bytes)."""
    if chunk_id == b"fmt " and len(chunk) >= 14:
        return struct.unpack(order + "H", chunk[12:14])[0]
    if chunk_id == b"COMM" and len(chunk) >= 8:
        channels, _, bits = struct.unpack(">hIh", chunk[:8])
        return max(channels, 0) * -(-max(bits, 0) // 8)
    return 0


def _scan(f: BinaryIO, size: int, order: str, data_id: bytes, skip: int) -> tuple[int, int, int] | None:
    """(promised, held, bytes per frame) of the sample chunk, walking the chunks from byte 12."""
    offset, frame_bytes = 12, 0
    while offset + 8 <= size:
        f.seek(offset)
        chunk_id, chunk_size = struct.unpack(order + "4sI", f.read(8))
        if chunk_id == data_id:
            if chunk_size in _UNKNOWN_SIZES:
                return None
            return chunk_size - skip, size - offset - 8 - skip, frame_bytes
        if chunk_id in (b"fmt ", b"COMM"):
            frame_bytes = _frame_bytes(f.read(min(chunk_size, 64)), chunk_id, order)
        offset += 8 + chunk_size + (chunk_size & 1)
    return None


def truncation(path: Path) -> Truncation | None:
    """The :class:`Truncation` of a WAV or AIFF file cut short; None for a complete file, a file
    of unknown length (streamed) or another format."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        for magic, forms, order, data_id, skip in _LAYOUTS:
            if head[:4] == magic and head[8:12] in forms:
                found = _scan(f, size, order, data_id, skip)
                if found is None or found[0] <= found[1]:
                    return None
                return Truncation("AIFF" if magic == b"FORM" else "WAV", found[0], max(found[1], 0), found[2])
    return None

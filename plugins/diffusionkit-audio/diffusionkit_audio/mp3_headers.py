"""Whether an MP3 says how long it is.

An MP3 has no length of its own: encoders since the 2000s put the frame count in a Xing/Info
(or VBRI) header inside the first frame. Without one, a decoder's length is the file size over the
first frame's bit rate, which a variable-rate file that starts quietly overstates, so a shortfall
against it says nothing of a cut-off copy. :func:`mp3_declares_length` reads that header alone.
"""

from __future__ import annotations

from pathlib import Path

#: bytes after an MP3's tags searched for its first frame and its length header
HEADER_SEARCH = 4096


def mp3_declares_length(path: Path) -> bool:
    """Whether an MP3's first frame holds its frame count (a Xing/Info header with the frames flag,
    or VBRI, what encoders write since the 2000s); without one, a decoder's frame count is only
    the file size over the first frame's bit rate, which a variable-rate file that starts quietly
    overstates. ID3v2 tags before the first frame are skipped, however many."""
    with open(path, "rb") as file:
        start = 0
        while (head := file.read(10))[:3] == b"ID3" and len(head) == 10:  # syncsafe size, optional footer
            start += 10 + sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(head[6:10]))
            start += 10 if head[5] & 0x10 else 0
            file.seek(start)
        file.seek(start)
        first = file.read(HEADER_SEARCH)
    sync = next((i for i in range(len(first) - 1) if first[i] == 0xFF and first[i + 1] & 0xE0 == 0xE0), None)
    window = first[sync:sync + 200] if sync is not None else b""
    if b"VBRI" in window:
        return True
    at = max(window.find(b"Xing"), window.find(b"Info"))
    return at >= 0 and bool(int.from_bytes(window[at + 4:at + 8], "big") & 1)

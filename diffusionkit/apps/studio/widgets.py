"""Gradio widgets by the medium a modality declares (:attr:`Modality.media_kind`): a table, so
the page never branches on a medium; a kind it does not know gets plain file fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

#: what a browser plays in each kind's widget (a file of another suffix is offered as a download).
PLAYABLE: dict[str | None, tuple[str, ...]] = {
    "audio": (".wav", ".mp3", ".ogg", ".flac"),
    "image": (".png", ".gif", ".jpg", ".jpeg", ".webp"),
    "video": (".mp4", ".webm"),
    None: (),
}
#: files shown as pictures beside a player (a spectrogram, a frame strip).
PICTURES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def input_widget(kind: str | None, label: str, elem_id: str, visible: bool) -> gr.components.Component:
    """An upload field (drag and drop) for one input file of ``kind``."""
    common: dict[str, Any] = {"label": label, "elem_id": elem_id, "visible": visible}
    if kind == "audio":
        return gr.Audio(sources=["upload"], type="filepath", format=None, **common)
    if kind == "image":
        return gr.Image(sources=["upload"], type="filepath", **common)
    if kind == "video":
        return gr.Video(sources=["upload"], **common)
    return gr.File(type="filepath", **common)


def player_widget(kind: str | None, label: str, elem_id: str) -> gr.components.Component:
    """A hidden, read-only player of one result of ``kind``, with a download button."""
    common: dict[str, Any] = {"label": label, "elem_id": elem_id, "visible": False, "interactive": False}
    if kind == "audio":
        return gr.Audio(type="filepath", buttons=["download"], **common)
    if kind == "image":
        return gr.Image(type="filepath", buttons=["download"], **common)
    if kind == "video":
        return gr.Video(buttons=["download"], **common)
    return gr.File(**common)


def split_files(kind: str | None, files: list[Path]) -> tuple[Path | None, Path | None]:
    """The file a ``kind`` player shows (the first one it plays, else the first file) and the
    first other file that is a picture."""
    playable = [f for f in files if f.suffix.lower() in PLAYABLE.get(kind, ())]
    medium = playable[0] if playable else (files[0] if files else None)
    pictures = [f for f in files if f != medium and f.suffix.lower() in PICTURES]
    return medium, pictures[0] if pictures else None

"""Gradio widgets from what a modality declares (:attr:`Modality.file_widgets`, a
:class:`~diffusionkit.media.FileWidgets` naming a Gradio component and its options), so the page
never branches on a medium; a modality that declares none gets plain file fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from diffusionkit.errors import UsageError
from diffusionkit.media import FileWidgets
from diffusionkit.modality import Modality

#: plain file fields, for a modality that declares no widgets.
PLAIN = FileWidgets("file", "File", upload={"type": "filepath"})
#: suffixes of the files shown in a small gallery beside a player (what a plugin saves next to its
#: main file, e.g. a plot of it).
VIEWABLE = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def widgets_of(modality: Modality) -> FileWidgets:
    """The widgets ``modality`` declares, or plain file fields."""
    return getattr(modality, "file_widgets", None) or PLAIN


def component(widgets: FileWidgets) -> type[gr.components.Component]:
    """The Gradio component class ``widgets`` names; a UsageError names a wrong one."""
    found = getattr(gr, widgets.component, None)
    if not (isinstance(found, type) and issubclass(found, gr.components.Component)):
        raise UsageError(f"the modality's file_widgets '{widgets.name}' name {widgets.component!r}, which is no "
                         f"Gradio component; name one such as 'File' (see diffusionkit.media.FileWidgets)")
    return found


def input_widget(widgets: FileWidgets, label: str, elem_id: str, visible: bool) -> gr.components.Component:
    """An upload field (drag and drop) for one input file."""
    common: dict[str, Any] = {"label": label, "elem_id": elem_id, "visible": visible}
    return component(widgets)(**{**widgets.upload, **common})


def player_widget(widgets: FileWidgets, label: str, elem_id: str) -> gr.components.Component:
    """A hidden, read-only player of one result (with a download button where the plugin asks for one)."""
    common: dict[str, Any] = {"label": label, "elem_id": elem_id, "visible": False, "interactive": False}
    return component(widgets)(**{**widgets.player, **common})


def split_files(widgets: FileWidgets, files: list[Path]) -> tuple[Path | None, Path | None]:
    """The file the player shows (the first one it plays, else the first file) and the first
    other file that the gallery beside it shows."""
    playable = [f for f in files if f.suffix.lower() in widgets.playable]
    medium = playable[0] if playable else (files[0] if files else None)
    viewable = [f for f in files if f != medium and f.suffix.lower() in VIEWABLE]
    return medium, viewable[0] if viewable else None

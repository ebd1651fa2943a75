"""Gradio widgets from what a modality declares (:attr:`Modality.file_widgets`, a
:class:`~diffusionkit.media.FileWidgets` naming Gradio components and their options), so the page
never branches on a medium; a modality that declares none gets plain file fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from diffusionkit.errors import UsageError
from diffusionkit.media import FileWidgets, Widget
from diffusionkit.modality import Modality

#: plain file fields, for a modality that declares no widgets.
PLAIN = FileWidgets("file", upload=Widget("File", {"type": "filepath"}), player=Widget("File"))


def widgets_of(modality: Modality) -> FileWidgets:
    """The widgets ``modality`` declares, or plain file fields."""
    return getattr(modality, "file_widgets", None) or PLAIN


def build(widgets: FileWidgets, widget: Widget, **common: Any) -> gr.components.Component:
    """The Gradio component ``widget`` names, with its options and the page's ``common`` ones;
    a UsageError names a component Gradio does not have."""
    found = getattr(gr, widget.component, None)
    if not (isinstance(found, type) and issubclass(found, gr.components.Component)):
        raise UsageError(f"the modality's file_widgets '{widgets.name}' name {widget.component!r}, which is no "
                         f"Gradio component; name one such as 'File' (see diffusionkit.media.FileWidgets)")
    return found(**{**widget.options, **common})


def input_widget(widgets: FileWidgets, label: str, elem_id: str, visible: bool) -> gr.components.Component:
    """An upload field (drag and drop) for one input file."""
    return build(widgets, widgets.upload, label=label, elem_id=elem_id, visible=visible)


def player_widget(widgets: FileWidgets, label: str, elem_id: str) -> gr.components.Component:
    """A hidden, read-only player of one result."""
    return build(widgets, widgets.player, label=label, elem_id=elem_id, visible=False, interactive=False)


def viewer_widget(widgets: FileWidgets, elem_id: str) -> gr.components.Component:
    """The hidden viewer beside a player (only for widgets that declare one; its options say
    whether it is read-only, e.g. ``interactive: False``)."""
    assert widgets.viewer is not None, widgets.name
    return build(widgets, widgets.viewer, elem_id=elem_id, visible=False)


def split_files(widgets: FileWidgets, files: list[Path]) -> tuple[Path | None, Path | None]:
    """The file the player shows (the first one it plays, else the first file) and the first
    other file the viewer shows (None without a viewer)."""
    playable = [f for f in files if f.suffix.lower() in widgets.playable]
    medium = playable[0] if playable else (files[0] if files else None)
    viewable = [f for f in files if f != medium and f.suffix.lower() in widgets.viewable] if widgets.viewer else []
    return medium, viewable[0] if viewable else None

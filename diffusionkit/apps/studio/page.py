"""The studio's page: Gradio widgets wired to :class:`~diffusionkit.apps.studio.engine.Studio`.

:class:`Page` holds the handlers (plain methods, testable without a browser) and builds the page
from what the loaded model's modality declares: its ``file_widgets`` pick the upload fields and
players (see :mod:`~diffusionkit.apps.studio.widgets`), its classes fill the class menus.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import gradio as gr

from diffusionkit.apps.common import text_condition
from diffusionkit.apps.studio.engine import Studio, Take
from diffusionkit.apps.studio.operations import OPERATIONS, TEXT
from diffusionkit.apps.studio.widgets import input_widget, player_widget, split_files, viewer_widget, widgets_of
from diffusionkit.bundle import LoadedModel, _modality_options
from diffusionkit.commands import error_line, user_message
from diffusionkit.diffusion.samplers import SAMPLERS
from diffusionkit.media import FileWidgets
from diffusionkit.options import METHODS
from diffusionkit.plugins import shipped_examples

log = logging.getLogger(__name__)
#: the settings the page shows, in order (the commands' option names).
FIELDS = ("label", "target", "prompt", "negative_prompt", "n", "strength", "method", "start", "end", "context", "times",
          "steps", "guidance", "seed", "sampler")
NO_LABEL = "none"
#: the queue that runs and model switches share: one at a time, in the order they came
MODEL_QUEUE = "model"
FIRST_OPERATION = "vary"


def error_text(command: str, err: BaseException) -> str:
    """The CLI's line for a user's error (``diffusionkit vary: error: ...``); a bug is named as one."""
    message = user_message(err)
    if message is None:
        log.error("studio: %s failed\n%s", command, traceback.format_exc())
        return f"diffusionkit {command}: internal error: {type(err).__name__}: {err} (see the studio's console)"
    return error_line(command, message)


class Page:
    """Handlers and layout of the studio page for ``studio`` (its loaded model opens the page)."""

    def __init__(self, studio: Studio, widgets: list[FileWidgets]) -> None:
        """``widgets``: the widget sets of the installed modalities (one per name); the loaded
        model's own is added when missing. Switching models shows another set."""
        self.studio = studio
        sets: dict[str, FileWidgets] = {}
        for widget_set in [*widgets, self.widgets]:
            sets.setdefault(widget_set.name, widget_set)
        self.widget_sets = list(sets.values())
        self.kinds = [w.name for w in self.widget_sets]
        self.slots = studio.limits.items

    @property
    def model(self) -> LoadedModel:
        return self.studio.shelf.model()

    @property
    def widgets(self) -> FileWidgets:
        """The widgets the loaded model's modality declares (plain file fields if none)."""
        return widgets_of(self.model.modality)

    @property
    def kind(self) -> str:
        """The name of those widgets, which picks the shown ones among :attr:`kinds`."""
        return self.widgets.name

    # ------------------------------------------------------------------ what the page shows
    def model_info(self) -> str:
        model = self.model
        classes = ", ".join(model.classes) if len(model.classes) > 1 else "unconditional"
        options = ", ".join(_modality_options(model.config.modality, model.modality))
        return (f"**{self.studio.shelf.current_choice}**: {self.kind} items of shape "
                f"{list(model.modality.shape)}; classes: {classes}. File options: {options}.")

    def has_prompt(self) -> bool:
        """Whether the loaded model takes a text prompt (the page then shows the prompt boxes)."""
        return text_condition(self.model) is not None

    def shows(self, name: str, operation: str) -> bool:
        """Whether the page shows field ``name`` for ``operation`` with the loaded model."""
        return name in OPERATIONS[operation].fields and (name not in TEXT or self.has_prompt())

    def label_choices(self) -> list[str]:
        return ["auto", NO_LABEL, *self.model.classes] if len(self.model.classes) > 1 else [NO_LABEL]

    def examples(self) -> dict[str, Path]:
        return {p.name: p for p in shipped_examples(tuple(self.model.modality.file_extensions))}

    def defaults(self, operation: str) -> dict[str, Any]:
        """The command's own defaults for the page's fields (vary: guidance 2, convert: n 4...)."""
        op = OPERATIONS[operation]
        if op.command is None:
            return {}
        cfg = self.studio.configs.base(op.command, None)
        values = {name: cfg.get(name) for name in FIELDS if name in op.fields and name not in ("sampler", *TEXT)}
        values["sampler"] = cfg.sampler.name
        if "label" in values:
            values["label"] = NO_LABEL if values["label"] is None else values["label"]
            if values["label"] not in self.label_choices():
                values["label"] = NO_LABEL
        if "target" in op.fields:
            values["target"] = self.model.classes[-1] if self.model.classes else None
        return values

    # ------------------------------------------------------------------ handlers
    def operation_changed(self, operation: str) -> list[Any]:
        """Show the fields of ``operation`` at its command's defaults, and the second input for
        interpolate: updates for [help, *fields, *second inputs]."""
        op = OPERATIONS[operation]
        defaults = self.defaults(operation)
        fields = [gr.update(visible=self.shows(name, operation), **({"value": defaults[name]} if name in defaults else {}))
                  for name in FIELDS]
        second = [gr.update(visible="b" in op.files and k == self.kind) for k in self.kinds]
        label = "input a" if "a" in op.files else "input"
        first = [gr.update(visible=k == self.kind and bool(op.files), label=label) for k in self.kinds]
        return [f"*{operation}*: {op.help}", *fields, *first, *second]

    def switch_model(self, choice: str, operation: str) -> list[Any]:
        """Load the model picked (the studio keeps the old one if that fails): updates for
        [status, info, label, target, prompt, negative prompt, examples, *first inputs, *second
        inputs, *slots...]."""
        try:
            self.studio.switch(choice)
            status = f"loaded {choice}"
        except Exception as err:  # noqa: BLE001 - the page shows it, the studio keeps its model
            status = error_text("studio", err)
        op = OPERATIONS[operation]
        classes = self.model.classes
        return [status, self.model_info(),
                gr.update(choices=self.label_choices(), value="auto" if len(classes) > 1 else NO_LABEL),
                gr.update(choices=classes, value=classes[-1] if classes else None),
                *[gr.update(visible=self.shows(name, operation)) for name in TEXT],
                gr.update(choices=list(self.examples()), value=None),
                *[gr.update(visible=k == self.kind and bool(op.files), value=None) for k in self.kinds],
                *[gr.update(visible=k == self.kind and "b" in op.files, value=None) for k in self.kinds],
                *self.slot_updates(None)]

    def run(self, operation: str, *values: Any) -> list[Any]:
        """Run ``operation``: ``values`` are [*fields, media text, *first inputs, *second inputs,
        history]; updates for [status, take files, history menu, take, history, *slots]."""
        fields = dict(zip(FIELDS, values[:len(FIELDS)]))
        rest = values[len(FIELDS):]
        media, firsts, seconds, history = rest[0], rest[1:1 + len(self.kinds)], rest[1 + len(self.kinds):-1], rest[-1]
        op = OPERATIONS.get(operation)
        command = op.command or operation if op else operation
        index = self.kinds.index(self.kind)
        names = ("a", "b") if op and "a" in op.files else ("input",)
        files = dict(zip(names, (firsts[index], seconds[index])))
        try:
            take = self.studio.run(operation, self.settings(fields), files, media or "")
        except Exception as err:  # noqa: BLE001 - every failure is one line on the page; the studio keeps running
            return [error_text(command, err), gr.update(), gr.update(), gr.update(), history,
                    *[gr.update() for _ in range(self.slot_outputs())]]
        history = [*history, take.number]
        status = f"take #{take.number}: {len(take.items)} {operation} result(s) in {take.folder}" + \
            (f"; {take.note}" if take.note else "")
        return [status, self.take_files(take), self.history_menu(history, take), take.number, history,
                *self.slot_updates(take)]

    @staticmethod
    def settings(fields: dict[str, Any]) -> dict[str, Any]:
        """The page's values as the command's options (whole numbers whole, ``none`` as null)."""
        settings = dict(fields)
        for name in ("n", "times", "steps", "seed"):
            value = settings.get(name)
            if isinstance(value, float) and value.is_integer():
                settings[name] = int(value)
        if settings.get("label") == NO_LABEL:
            settings["label"] = None
        return settings

    def take_files(self, take: Take) -> list[str]:
        return [str(p) for files in take.items for p in files] + [str(take.recipe)]

    def history_menu(self, history: list[int], current: Take | None) -> Any:
        labels = [self.studio.takes[n].label for n in reversed(history) if n in self.studio.takes]
        return gr.update(choices=labels, value=current.label if current else None)

    def show_take(self, label: str | None) -> list[Any]:
        """A take chosen in the history: updates for [status, take files, take, *slots]."""
        take = next((t for t in self.studio.takes.values() if t.label == label), None)
        if take is None:
            return [gr.update(), gr.update(), gr.update(), *[gr.update() for _ in range(self.slot_outputs())]]
        return [f"take #{take.number} ({take.model})", self.take_files(take), take.number, *self.slot_updates(take)]

    def use_as_input(self, take_number: int | None, item: int) -> list[Any]:
        """Put item ``item`` of the shown take into the first input field: updates for [status, *first inputs]."""
        take = self.studio.takes.get(take_number or -1)
        if take is None or item >= len(take.items):
            return ["no take to use", *[gr.update() for _ in self.kinds]]
        medium, _ = split_files(self.widgets, take.items[item])
        return [f"take #{take.number} item {item + 1} is the input now",
                *[gr.update(value=str(medium)) if k == self.kind else gr.update() for k in self.kinds]]

    def keep(self, take_number: int | None, item: int, pack: str) -> str:
        try:
            copied = self.studio.keep(take_number or -1, item, pack)
        except Exception as err:  # noqa: BLE001
            return error_text("studio", err)
        return f"kept take #{take_number} item {item + 1} in {copied[0].parent}"

    def pick_example(self, name: str | None) -> list[Any]:
        path = self.examples().get(name or "")
        return [gr.update(value=str(path)) if path and k == self.kind else gr.update() for k in self.kinds]

    @property
    def viewer_kinds(self) -> list[str]:
        """The names of the widget sets that declare a viewer beside their player."""
        return [w.name for w in self.widget_sets if w.viewer is not None]

    def slot_outputs(self) -> int:
        return self.slots * (1 + len(self.kinds) + len(self.viewer_kinds))

    def slot_updates(self, take: Take | None) -> list[Any]:
        """[*groups, *players, *viewers] (players and viewers slot by slot, kind by kind) for
        ``take`` (None: empty)."""
        items = take.items if take else []
        groups, players, viewers = [], [], []
        for i in range(self.slots):
            files = items[i] if i < len(items) else None
            medium, shown = split_files(self.widgets, files) if files else (None, None)
            groups.append(gr.update(visible=files is not None))
            players += [gr.update(visible=files is not None and k == self.kind,
                                  value=str(medium) if medium and k == self.kind else None) for k in self.kinds]
            viewers += [gr.update(visible=shown is not None and k == self.kind,
                                  value=str(shown) if shown and k == self.kind else None) for k in self.viewer_kinds]
        return [*groups, *players, *viewers]

    # ------------------------------------------------------------------ layout
    def build(self) -> gr.Blocks:
        """The page (not yet launched)."""
        op = OPERATIONS[FIRST_OPERATION]
        defaults = self.defaults(FIRST_OPERATION)
        classes = self.model.classes
        with gr.Blocks(title="diffusionkit studio") as page:
            gr.Markdown("## diffusionkit studio\nDrop a sample, pick what to do, listen, keep the good takes.")
            with gr.Row():
                picker = gr.Dropdown(self.studio.shelf.choices(), value=self.studio.shelf.current_choice,
                                     label="model", allow_custom_value=True, elem_id="model", scale=1)
                info = gr.Markdown(self.model_info(), elem_id="model-info")
            with gr.Row():
                with gr.Column(scale=1):
                    firsts = [input_widget(w, "input", f"input-{w.name}", w.name == self.kind)
                              for w in self.widget_sets]
                    seconds = [input_widget(w, "input b", f"input-b-{w.name}", False) for w in self.widget_sets]
                    example = gr.Dropdown(list(self.examples()), value=None, label="or pick an example",
                                          elem_id="example")
                with gr.Column(scale=1):
                    operation = gr.Radio(list(OPERATIONS), value=FIRST_OPERATION, label="operation",
                                         elem_id="operation")
                    help_line = gr.Markdown(f"*{FIRST_OPERATION}*: {op.help}")
                    widgets = self._fields(defaults, classes)
                    media = gr.Textbox(label="file options (the CLI's media options, e.g. output_rate=44100)",
                                       elem_id="media")
                    go = gr.Button("Run", variant="primary", elem_id="run")
            status = gr.Textbox(label="status", interactive=False, elem_id="status", lines=1)
            with gr.Row():
                history_menu = gr.Dropdown([], label="takes this session", elem_id="history", scale=3)
                pack = gr.Textbox(value="my_pack", label="keep into folder", elem_id="pack", scale=1)
            take_state, history = gr.State(None), gr.State([])
            groups, players, viewers, uses, keeps = [], [], [], [], []
            for row in range(0, self.slots, 4):
                with gr.Row():
                    for i in range(row, min(row + 4, self.slots)):
                        with gr.Column(visible=False, elem_classes=["take"], min_width=200) as group:
                            players += [player_widget(w, f"{i + 1}", f"player-{i}-{w.name}")
                                        for w in self.widget_sets]
                            viewers += [viewer_widget(w, f"viewer-{i}-{w.name}") for w in self.widget_sets
                                        if w.viewer is not None]
                            with gr.Row():
                                uses.append(gr.Button("use as input", size="sm", elem_id=f"use-{i}"))
                                keeps.append(gr.Button("keep", size="sm", elem_id=f"keep-{i}"))
                        groups.append(group)
            take_files = gr.File(label="this take's files and recipe", file_count="multiple", interactive=False,
                                 elem_id="take-files")
            slots = [*groups, *players, *viewers]
            fields = [widgets[name] for name in FIELDS]

            operation.change(self.operation_changed, operation, [help_line, *fields, *firsts, *seconds],
                             queue=False)
            picker.change(self.switch_model, [picker, operation],  # waits its turn behind a run (one queue)
                          [status, info, widgets["label"], widgets["target"], *[widgets[name] for name in TEXT],
                           example, *firsts, *seconds, *slots], concurrency_limit=1, concurrency_id=MODEL_QUEUE)
            example.change(self.pick_example, example, firsts, queue=False)
            go.click(self.run, [operation, *fields, media, *firsts, *seconds, history],
                     [status, take_files, history_menu, take_state, history, *slots], api_name="run",
                     concurrency_limit=1, concurrency_id=MODEL_QUEUE, show_progress="full")
            history_menu.input(self.show_take, history_menu, [status, take_files, take_state, *slots], queue=False)
            for i in range(self.slots):
                uses[i].click(lambda n, i=i: self.use_as_input(n, i), take_state, [status, *firsts], queue=False)
                keeps[i].click(lambda n, p, i=i: self.keep(n, i, p), [take_state, pack], status, queue=False)
        return page

    def _fields(self, defaults: dict[str, Any], classes: list[str]) -> dict[str, gr.components.Component]:

        def shown(name: str) -> dict[str, Any]:
            return {"visible": self.shows(name, FIRST_OPERATION), "elem_id": f"field-{name}"}

        with gr.Row():
            widgets = {
                "label": gr.Dropdown(self.label_choices(), value=defaults.get("label", "auto"), label="class",
                                     info="auto: the class the model hears in the input", **shown("label")),
                "target": gr.Dropdown(classes, value=classes[-1] if classes else None, label="target class",
                                      allow_custom_value=True,
                                      **shown("target")),
                "method": gr.Radio(list(METHODS), value="sdedit", label="method", **shown("method")),
            }
        widgets["prompt"] = gr.Textbox(label="prompt", placeholder="e.g. a short bright snare", **shown("prompt"))
        widgets["negative_prompt"] = gr.Textbox(label="negative prompt (steer away from)", placeholder="e.g. muffled",
                                                **shown("negative_prompt"))
        widgets["n"] = gr.Slider(1, self.slots, value=defaults.get("n", 4), step=1, label="how many", **shown("n"))
        widgets["strength"] = gr.Slider(0, 1, value=defaults.get("strength", 0.3), step=0.05, label="strength",
                                        **shown("strength"))
        with gr.Row():
            widgets["start"] = gr.Slider(0, 1, value=0.25, step=0.01, label="region start", **shown("start"))
            widgets["end"] = gr.Slider(0, 1, value=0.75, step=0.01, label="region end", **shown("end"))
        with gr.Row():
            widgets["context"] = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="context", **shown("context"))
            widgets["times"] = gr.Slider(1, 8, value=1, step=1, label="windows to append", **shown("times"))
        with gr.Accordion("sampling", open=False):
            with gr.Row():
                widgets["steps"] = gr.Slider(1, 100, value=defaults.get("steps", 20), step=1, label="steps",
                                             **shown("steps"))
                widgets["guidance"] = gr.Slider(0, 10, value=defaults.get("guidance", 2.0), step=0.1,
                                                label="guidance", **shown("guidance"))
            with gr.Row():
                widgets["seed"] = gr.Number(value=0, precision=0, label="seed", **shown("seed"))
                widgets["sampler"] = gr.Dropdown(list(SAMPLERS), value=defaults.get("sampler", "dpmpp_2m"),
                                                 label="sampler", **shown("sampler"))
        return widgets

"""Contract checks of a plugin's media: dataset items, file round trips, bad files, rendering."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from diffusionkit.media import FileWidgets, Widget
from diffusionkit.modality import MediaError, Modality, Rendered

from .failures import describe_error
from .subject import CheckResult, PluginUnderTest, failed, passed

NO_DATA = "the plugin ships no data option; add conf/data/<name>.yaml so these checks (and training) have data"
#: bytes that no media reader accepts.
GARBAGE = b"this is not a media file \x00\xff\xfe" * 16


def tensor_problem(x: object, modality: Modality, what: str) -> str | None:
    """Why ``x`` is not a model-space item of ``modality`` (a float32 tensor of its shape, finite)."""
    if not isinstance(x, Tensor):
        return f"{what} is a {type(x).__name__}, not a torch.Tensor"
    if tuple(x.shape) != modality.shape:
        return f"{what} has shape {list(x.shape)}, the modality declares {list(modality.shape)} (channels, *spatial)"
    if x.dtype != torch.float32:
        return f"{what} is {x.dtype}, expected torch.float32"
    if not torch.isfinite(x).all():
        return f"{what} holds NaN or infinite values"
    return None


def _label_problem(label: object, classes: Sequence[str]) -> str | None:
    if isinstance(label, Tensor) and label.numel() == 1 and not label.is_floating_point():
        label = int(label)
    if not isinstance(label, int) or isinstance(label, bool):
        return f"label {label!r} is not an int"
    if classes and not 0 <= label < len(classes):
        return f"label {label} is outside 0..{len(classes) - 1} (one per entry of `classes`)"
    return None


def check_dataset_items(subject: PluginUnderTest) -> list[CheckResult]:
    """Items of every data option: ``{"x": float32 [C, *spatial] in about [-1, 1], "label": int}``."""
    if not subject.data_options:
        return failed("dataset items", NO_DATA)
    results, slack = [], subject.settings.value_slack
    for data in subject.data_options:
        check, dataset, modality = f"data {data}", subject.dataset(data), subject.modality(data)
        classes = list(getattr(dataset, "classes", []))
        if len(dataset) == 0:
            results += failed(check, "the dataset is empty")
            continue
        low, high, problem = math.inf, -math.inf, None
        for index in sorted({*range(min(subject.settings.items_per_dataset, len(dataset))), len(dataset) - 1}):
            item = dataset[index]
            if not isinstance(item, dict) or not {"x", "label"} <= set(item):
                problem = f"item {index} is {type(item).__name__}, expected a dict with keys 'x' and 'label'"
                break
            problem = tensor_problem(item["x"], modality, f"item {index}['x']") or _label_problem(item["label"],
                                                                                             classes)
            if problem:
                break
            low, high = min(low, float(item["x"].min())), max(high, float(item["x"].max()))
        if problem is None and (low < -1 - slack or high > 1 + slack):
            problem = (f"values span [{low:.3g}, {high:.3g}]; model space is [-1, 1] (within {slack}): "
                       f"scale the data in the dataset (and in load)")
        results += failed(check, problem) if problem else passed(
            check, f"{len(dataset)} items {list(modality.shape)} float32 in [{low:.2f}, {high:.2f}], "
                   f"{len(classes)} classes")
    return results


def sample_file(subject: PluginUnderTest, folder: Path) -> Path:
    """A media file to start from: the settings' writer, else the first dataset item saved."""
    if subject.settings.write_sample is not None:
        return Path(subject.settings.write_sample(folder / "sample"))
    return Path(subject.modality(subject.main_data).save(subject.batch(1)[0], folder / "from_dataset")[0])


def written_problem(paths: object, what: str) -> str | None:
    """Why what a writer returned is not a non-empty list of written, non-empty files."""
    if not isinstance(paths, (list, tuple)) or not paths:
        return f"{what} returned {paths!r}; return the list of paths it wrote"
    missing = [str(p) for p in paths if not Path(p).is_file() or Path(p).stat().st_size == 0]
    return f"{what} returned paths that are missing or empty: {', '.join(missing)}" if missing else None


def check_roundtrip(subject: PluginUnderTest) -> list[CheckResult]:
    """``load(file) -> save -> load`` keeps the item (RMSE within the settings' limit), the first
    saved file is one ``load`` reads, and ``load_items`` gives items of the declared shape."""
    if subject.main_data is None and subject.settings.write_sample is None:
        return failed("round trip", NO_DATA)
    modality, folder = subject.modality(subject.main_data), subject.folder("round trip")
    start = sample_file(subject, folder)
    if start.suffix.lower() not in modality.file_extensions:
        return failed("round trip", f"the sample file {start.name} has a suffix that file_extensions "
                                    f"{modality.file_extensions} does not list; list it, or have save() return the "
                                    f"file load() reads first")
    first = modality.load(start)
    problem = tensor_problem(first, modality, f"load('{start.name}')")
    if problem:
        return failed("round trip", problem)
    written = modality.save(first, folder / "roundtrip")
    problem = written_problem(written, "save()")
    if problem:
        return failed("round trip", problem)
    if Path(written[0]).suffix.lower() not in modality.file_extensions:
        return failed("round trip", f"save() returned {Path(written[0]).name} first, which load() does not read "
                                    f"(file_extensions {modality.file_extensions}); return the readable file first")
    second = modality.load(written[0])
    problem = tensor_problem(second, modality, f"load('{Path(written[0]).name}')")
    rmse = float((second - first).square().mean().sqrt()) if problem is None else math.nan
    limit = subject.settings.roundtrip_rmse
    if problem is None and not rmse <= limit:
        problem = (f"load -> save -> load of {start.name} changes the item by RMSE {rmse:.4f} (limit {limit}); "
                   f"save() and load() should be inverse up to the format's precision")
    items = modality.load_items(start)
    if problem is None and (not items or any(tensor_problem(i, modality, "item") for i in items)):
        problem = f"load_items('{start.name}') must return a non-empty list of items of shape {list(modality.shape)}"
    return failed("round trip", problem) if problem else passed(
        "round trip", f"{start.name} -> {', '.join(Path(p).name for p in written)} -> load: RMSE {rmse:.4f} "
                      f"(limit {limit})")


def _bad_files(subject: PluginUnderTest, folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Unreadable inputs: per extension an empty file, garbage bytes, a folder and a missing file,
    plus the settings' own examples."""
    paths = []
    for ext in extensions:
        (folder / f"empty{ext}").write_bytes(b"")
        (folder / f"garbage{ext}").write_bytes(GARBAGE)
        (folder / f"folder{ext}").mkdir(exist_ok=True)
        paths += [folder / f"{kind}{ext}" for kind in ("empty", "garbage", "folder", "missing")]
    for name, content in subject.settings.bad_files.items():
        (folder / name).write_bytes(content)
        paths.append(folder / name)
    return paths


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Native decoders (e.g. libmpg123) print their own complaints about garbage to the process's
    stderr; the MediaError is what counts."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_quietly(modality: Modality, path: Path) -> Tensor:
    with native_stderr_silenced():
        return modality.load(path)


def check_bad_files(subject: PluginUnderTest) -> list[CheckResult]:
    """Every unreadable input raises MediaError with one line that names the file."""
    modality = subject.modality(subject.main_data)
    paths = _bad_files(subject, subject.folder("bad files"), modality.file_extensions)
    problems = []
    for path in paths:
        try:
            _load_quietly(modality, path)
            problems.append(f"load('{path.name}') returned an item instead of raising MediaError")
        except MediaError as err:
            if path.name not in str(err) or "\n" in str(err).strip():
                problems.append(f"load('{path.name}') raised MediaError({str(err)!r}); its message must be one "
                                f"line that names the file")
        except Exception as err:  # what the author must change: any other exception type
            reason = str(err).splitlines()[0][:80] if str(err) else ""
            problems.append(f"load('{path.name}') raised {type(err).__name__} ({reason}) instead of MediaError")
    if problems:
        return failed("bad files", f"{len(problems)} of {len(paths)} bad files: {'; '.join(problems[:3])}; fix: catch "
                                   f"the reader's errors and raise diffusionkit.modality.MediaError(f\"cannot read "
                                   f"'{{path}}': <reason>\")")
    return passed("bad files", f"{len(paths)} bad files (empty, garbage, a folder, missing, per extension) "
                               f"each raise MediaError naming the file")


WRITER_FIX = ("give each Rendered the writer that logs it, e.g. Rendered(kind, data, writer=SummaryMethod(...)) "
              "or your own MediaWriter (see diffusionkit.media)")


def rendered_problem(medium: object) -> str | None:
    """Why ``medium`` is not a Rendered its writer can log (see diffusionkit.media): it needs a
    numpy array, a writer, a time axis of its data with a rate, and data its writer accepts."""
    if not isinstance(medium, Rendered):
        return f"render() gave a {type(medium).__name__}, expected diffusionkit.modality.Rendered"
    data, name = medium.data, f"Rendered('{medium.kind}')"
    if not isinstance(data, np.ndarray):
        return f"{name}.data is a {type(data).__name__}, expected a numpy array"
    if medium.writer is None:
        return f"{name} has no writer, so no logger shows it; {WRITER_FIX}"
    if medium.time_axis is not None and not 0 <= medium.time_axis < data.ndim:
        return f"{name}.time_axis {medium.time_axis} is not an axis of its data ({data.ndim} axes)"
    if medium.time_axis is not None and medium.rate <= 0:
        return f"{name} needs its rate (steps per second along its time_axis {medium.time_axis}), got {medium.rate}"
    return medium.writer.problem(medium)


def logging_problem(media: Sequence[Rendered], folder: Path) -> str | None:
    """Why ``media`` cannot be written to TensorBoard's ``SummaryWriter`` (the default logger) in
    ``folder`` by their own writers, or None."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    try:
        for medium in media:
            name = f"Rendered('{medium.kind}')'s writer {type(medium.writer).__name__}"
            if not medium.writer.accepts(writer):
                return f"{name} does not accept TensorBoard's SummaryWriter"
            try:
                medium.writer.write(writer, f"check/{medium.kind}", medium, 0)
            except Exception as err:  # what the author must change: a writer that fails
                return f"{name} raised {describe_error(err)} writing to TensorBoard"
    finally:
        writer.close()
    return None


def rendered_list(media: Rendered | Sequence[Rendered]) -> list[Rendered]:
    """What ``render`` returned, as a list (it may return one medium or several)."""
    return [media] if isinstance(media, Rendered) else list(media)


def check_rendering(subject: PluginUnderTest) -> list[CheckResult]:
    """``render(batch)`` gives media that their own writers log to TensorBoard without error;
    ``save_grid`` writes its files."""
    if subject.main_data is None:
        return failed("rendering", NO_DATA)
    modality, batch = subject.modality(subject.main_data), subject.batch(2)
    media = rendered_list(modality.render(batch))
    problem = next((p for p in map(rendered_problem, media) if p), None) if media else "render() returned nothing"
    if problem:
        return failed("rendering", problem)
    folder = subject.folder("rendering")
    problem = logging_problem(media, folder / "tensorboard")
    if problem:
        return failed("rendering", problem)
    grid = modality.save_grid(batch, folder / "grid")
    problem = written_problem(grid, "save_grid()")
    return failed("rendering", problem) if problem else passed(
        "rendering", f"render: {', '.join(f'{m.kind} {list(m.data.shape)}' for m in media)}, each logged to "
                     f"TensorBoard by its writer; save_grid wrote {', '.join(Path(p).name for p in grid)}")


ROUNDTRIP_FIX = ("fix: return a non-empty dict of measures by name, each a finite Python float, e.g. "
                 "{'snr_db': float(snr)} (float() turns numpy and torch numbers into one; leave out what cannot be "
                 "measured rather than returning NaN)")


def roundtrip_problem(report: object) -> str | None:
    """Why what ``roundtrip()`` returned is not finite floats by name (with the fix), or None."""
    if not isinstance(report, dict) or not report:
        seen = f"returned {type(report).__name__} {report!r:.80}"
    else:
        wrong = [f"{key!r}: {value!r:.40} ({type(value).__name__})" for key, value in report.items()
                 if not (isinstance(key, str) and isinstance(value, float) and math.isfinite(value))]
        if not wrong:
            return None
        seen = f"gave {', '.join(wrong[:3])}" + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
    return f"roundtrip() must return finite floats by name; it {seen}; {ROUNDTRIP_FIX}"


def declaration_problem(modality: Modality) -> str | None:
    """Why ``steps_are_items`` or ``file_widgets`` is not what the core can use, or None."""
    if modality.steps_are_items and modality.time_axis is None:
        return "steps_are_items is True but time_axis is None; name the axis whose steps are items"
    widgets = modality.file_widgets
    if widgets is not None and not (isinstance(widgets, FileWidgets) and isinstance(widgets.upload, Widget)
                                    and isinstance(widgets.player, Widget) and widgets.name):
        return (f"file_widgets is {widgets!r:.80}; declare diffusionkit.media.FileWidgets(name, upload=Widget(...), "
                f"player=Widget(...)) or None")
    return None


def check_optional_methods(subject: PluginUnderTest) -> list[CheckResult]:
    """``time_axis``, ``envelope``, ``reconstruction_loss`` and ``roundtrip``, whether overridden or not,
    and the declarations ``steps_are_items`` and ``file_widgets``."""
    if subject.main_data is None:
        return failed("optional methods", NO_DATA)
    modality, batch = subject.modality(subject.main_data), subject.batch(2)
    axis, problem = modality.time_axis, declaration_problem(modality)
    if axis is not None and not 0 <= axis < modality.spatial_rank:
        problem = f"time_axis {axis} is not a spatial axis (0..{modality.spatial_rank - 1}) or None"
    envelope = modality.envelope(batch)
    if problem is None and envelope is not None and (envelope.dim() != 2 or envelope.shape[0] != len(batch)):
        problem = f"envelope() gives shape {list(envelope.shape)}; expected [batch, steps] or None"
    loss = modality.reconstruction_loss(batch, batch)
    if problem is None and loss is not None and (loss.dim() != 0 or not torch.isfinite(loss)):
        problem = "reconstruction_loss() must return a finite scalar tensor or None"
    folder = subject.folder("optional methods")
    report = modality.roundtrip(sample_file(subject, folder), folder / "roundtrip")
    problem = problem or roundtrip_problem(report)
    return failed("optional methods", problem) if problem else passed(
        "optional methods", f"time_axis {axis}, envelope {'-' if envelope is None else list(envelope.shape)}, "
                            f"roundtrip reports {', '.join(report)}")

"""Pieces shared by the commands that edit an input: the command shape, region masks,
time-axis windows, slerp."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import (check_output, edit_labels, finish, open_model, output_dir, require_values,
                                      resolve_label, save_items)
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError
from diffusionkit.modality import MediaError, Modality, media_files
from diffusionkit.out_folder import make_folder
from diffusionkit.plugin_calls import read_media

#: ``edit(model, source, labels, generator, conditioning) -> items``: the part each command adds.
Edit = Callable[[LoadedModel, Tensor, "Tensor | None", torch.Generator, dict[str, Tensor]], Tensor]


def source_labels(model: LoadedModel, source: Tensor, label: object, n: int) -> Tensor | None:
    """Labels for ``n`` edits of ``source``: ``label=auto`` is the class the model itself
    recognises in the source (:meth:`LoadedModel.recognize`), so variations keep it;
    a class name or index is that class; None leaves the edits unconditioned."""
    if label == "auto":
        inferred = model.recognize(source.unsqueeze(0))
        return None if inferred is None else inferred.expand(n).clone()
    return edit_labels(n, label, model.classes)


def unrecognized_note(model: LoadedModel) -> str:
    """What ``label=auto`` cannot hear (an adapter's new classes), to end its line with; else empty."""
    names = model.unrecognized_classes
    if not names:
        return ""
    return (f"; its recogniser learned the base's classes only, so it never names {', '.join(names)}: give "
            f"label={names[0]} for such an input, or teach it them: diffusionkit recognizer ckpt=<the model.safetensors "
            f"finetune merge=true writes> data=folder data.dataset.root=<your folder>")


def run_edit(cfg: DictConfig, command: str, prefix: str | Callable[[LoadedModel], str], edit: Edit) -> Path:
    """What every command that edits ``cfg.input`` does: open the model (with the named
    inputs), read the input, let ``edit`` make the items (it checks its own options first),
    then write ``source`` + ``<prefix>_000``... + the grid + ``recipe.yaml`` (``prefix`` may be a
    function of the model, e.g. the target class name). The output folder
    is made only once the items exist, so a refused option leaves nothing behind.

    ``input=`` a folder edits each of its media files (sub-folders included) the same way, each
    into ``out/<its path in the folder, without suffix>/`` with a recipe that names the file, so
    the model loads once; a file that cannot be read is skipped and named."""
    require_values(cfg)
    check_output(cfg.out)
    model, conditioning = open_model(cfg, cfg.n)
    for name in ("label", "target"):  # checked once, before any file is read
        if cfg.get(name) not in (None, "auto"):
            resolve_label(cfg.get(name), model.classes)
    if not Path(cfg.input).expanduser().is_dir():
        made = _edited(cfg, model, conditioning, edit, read_media(model.modality, cfg.input))
        return _write_edits(cfg, model, prefix, *made, output_dir(command, cfg.out))
    folder = Path(cfg.input).expanduser()
    files, earlier = folder_inputs(folder, model.modality.file_extensions)
    if earlier:
        print(f"note: left out {earlier} files of earlier outputs in {folder} (sub-folders holding a recipe.yaml; "
              "give such a folder as input= to edit its files)")
    if not files:
        raise UsageError(f"input={cfg.input}: the folder holds no {'/'.join(model.modality.file_extensions)} files "
                         "(hidden ones, .name, are left out); give a file or a folder of them")
    out, skipped, written = None, [], 0
    for path, name in zip(files, output_names(files, folder)):
        file_cfg = cfg.copy()
        file_cfg.input = str(path)
        try:  # only the input's own read skips it: another option's error stops the command
            source = read_media(model.modality, path)
        except MediaError as err:
            print(f"skipped {path}: {err}")
            skipped.append(path)
            continue
        try:
            made = _edited(file_cfg, model, conditioning, edit, source)
            out = out or output_dir(command, cfg.out)
            _write_edits(file_cfg, model, prefix, *made, make_folder(out / name), file=path)
        except (MediaError, UsageError):
            if written:
                print(f"stopped at {path}: the edits of {written} of {len(files)} files are in {out}")
            raise
        written += 1
    if out is None:
        raise UsageError(f"input={cfg.input}: none of its {len(files)} files could be read (each named above)")
    print(f"{command}: {written} of {len(files)} files of {folder} edited into {out}"
          + (f"; {len(skipped)} skipped: {', '.join(str(p.relative_to(folder)) for p in skipped)}" if skipped else ""))
    return out


def folder_inputs(folder: Path, extensions: tuple[str, ...]) -> tuple[list[Path], int]:
    """The media files of ``folder`` to edit, and how many were left out as earlier outputs (files
    in its sub-folders that hold a ``recipe.yaml``, a command's output folder); where every file is
    such an output, the user pointed at outputs to edit them: none is left out."""
    every = media_files(folder, extensions)
    files = [path for path in every if not any((folder / parent / "recipe.yaml").is_file()
                                               for parent in path.relative_to(folder).parents if parent != Path("."))]
    return (files, len(every) - len(files)) if files else (every, 0)


def _edited(cfg: DictConfig, model: LoadedModel, conditioning: dict[str, Tensor], edit: Edit,
            source: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """``source`` (the input of ``cfg.input``), its labels and its edits."""
    labels = source_labels(model, source, cfg.label, cfg.n)
    return source, labels, edit(model, source, labels, torch.Generator().manual_seed(int(cfg.seed)), conditioning)


def _write_edits(cfg: DictConfig, model: LoadedModel, prefix: str | Callable[[LoadedModel], str], source: Tensor,
                 labels: Tensor | None, items: Tensor, out: Path, file: Path | None = None) -> Path:
    """``source``, the edits, the grid and the recipe in ``out``; the label the model heard is
    said (of ``file`` where one of a folder's is edited)."""
    written = model.modality.save(source, out / "source")
    name = prefix(model) if callable(prefix) else prefix
    written += save_items(model, items, None, out, names=[f"{name}_{i:03d}" for i in range(len(items))])
    extra = {}
    if cfg.label == "auto" and labels is not None:
        extra["label_inferred"] = model.classes[int(labels[0])]
        print(f"the model hears {'the input' if file is None else file} as '{extra['label_inferred']}' "
              "(label=auto; pass label=NAME to choose)" + unrecognized_note(model))
    return finish(out, cfg, model, written, **extra)


def output_names(files: list[Path], folder: Path) -> list[str]:
    """Each file's output folder inside ``out``: its path in ``folder`` without the suffix, other
    dots made ``_`` (with the suffix, as written, where two files share a stem: ``kick.wav`` and
    ``kick.flac``), made unique ignoring case with ``_2``, ``_3``... (so no file's edits overwrite
    another's)."""
    bare = ["/".join(part.replace(".", "_") for part in path.relative_to(folder).with_suffix("").parts)
            for path in files]  # no dot left: a folder never takes the name of another file's output
    shared = {name.lower() for name in bare if sum(other.lower() == name.lower() for other in bare) > 1}
    names, used = [], set()
    for name, path in zip(bare, files):
        name = f"{name}_{path.suffix.lstrip('.')}" if name.lower() in shared else name
        unique, count = name, 1
        while unique.lower() in used:
            count += 1
            unique = f"{name}_{count}"
        used.add(unique.lower())
        names.append(unique)
    return names


def edit_axis(modality: Modality) -> int:
    """The tensor axis of an item ``[C, *spatial]`` that region edits act on: time, else the last."""
    return 1 + (modality.time_axis if modality.time_axis is not None else modality.spatial_rank - 1)


def region_mask(modality: Modality, start: float, end: float) -> Tensor:
    """``[1, 1, *spatial]`` with 1 inside ``[start, end)`` (fractions) of the edit axis, else 0."""
    if not 0.0 <= start < end <= 1.0:
        raise UsageError(f"need 0 <= start < end <= 1 (fractions of the length), got start={start} end={end}")
    axis = edit_axis(modality)
    length = modality.shape[axis]
    first = min(round(start * length), length - 1)
    last = min(max(round(end * length), first + 1), length)
    mask = torch.zeros((1, 1, *modality.spatial_size))
    mask.narrow(axis + 1, first, last - first).fill_(1.0)
    return mask


def check_context(context: float) -> None:
    if not 0.0 < context < 1.0:
        raise UsageError(f"context must lie strictly between 0 and 1 (a fraction of the window), got {context}")


def continuation_window(current: Tensor, modality: Modality, context: float) -> tuple[Tensor, Tensor, int]:
    """For ``extend``: a window ``[C, *spatial]`` that starts with the last ``context`` fraction of
    ``current`` (along the edit axis), the mask that keeps that part, and its length in steps."""
    check_context(context)
    axis = edit_axis(modality)
    window = modality.shape[axis]
    keep = max(1, round(context * window))
    known = torch.zeros(modality.shape)
    known.narrow(axis, 0, keep).copy_(current.narrow(axis, current.shape[axis] - keep, keep))
    mask = torch.zeros((1, 1, *modality.spatial_size))
    mask.narrow(axis + 1, 0, keep).fill_(1.0)
    return known, mask, keep


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between two noise tensors (Shoemake 1985; used for diffusion
    latents since DDIM, Song et al. 2021), which keeps the norm a Gaussian sample would have."""
    a_flat, b_flat = a.flatten(), b.flatten()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm()).clamp_min(1e-12)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if theta < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)


def end_steps_mask(modality: Modality, first: int, last: int = 0) -> Tensor:
    """``[1, 1, *spatial]`` with 1 on the first ``first`` and the last ``last`` steps of the edit
    axis (e.g. the frames ``animate`` keeps), 0 elsewhere."""
    axis = edit_axis(modality)
    length = modality.shape[axis]
    if first < 0 or last < 0 or first + last >= length:
        raise UsageError(f"keep {first} first and {last} last steps of {length}: leave at least one to generate")
    mask = torch.zeros((1, 1, *modality.spatial_size))
    mask.narrow(axis + 1, 0, first).fill_(1.0)
    mask.narrow(axis + 1, length - last, last).fill_(1.0)
    return mask

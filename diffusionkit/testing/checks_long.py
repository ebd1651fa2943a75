"""The contract check of items longer than ``shape`` along ``time_axis``, as ``extend`` makes them:
``save``, ``save_grid`` and ``render`` must show every step, never crop silently to ``shape``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from diffusionkit.modality import Modality, Rendered

from .checks_media import NO_DATA, rendered_list, rendered_problem, written_problem
from .failures import describe_error
from .subject import CheckResult, PluginUnderTest, failed, passed, skipped

CHECK = "long items"
#: how much longer the check's items are than ``shape``: what ``extend`` adds by default (context=0.5).
EXTRA = 0.5
#: the least part of that extra length by which the first saved file and timed media must grow.
GROWTH = 0.5
FIX = ("fix: take the length from x.shape (not from the modality's shape) in save, save_grid and render, "
       "so that what `extend` makes is written and shown in full")


@dataclass(frozen=True)
class LongBatch:
    """A batch lengthened along its time axis, and its two crops to the declared length."""

    long: Tensor
    head: Tensor  #: the first steps, of the declared length: what a plugin that crops keeps
    tail: Tensor  #: the last steps, of the declared length
    time_axis: int  #: the modality's time_axis (a spatial axis)

    @property
    def steps(self) -> str:
        """``"96 steps along time_axis 1 (declared 64)"``."""
        axis = self.time_axis + 2
        return f"{self.long.shape[axis]} steps along time_axis {self.time_axis} (declared {self.head.shape[axis]})"

    @property
    def least_growth(self) -> float:
        """The smallest ratio of long to declared length that the written media may show."""
        axis = self.time_axis + 2
        return 1.0 + GROWTH * (self.long.shape[axis] / self.head.shape[axis] - 1.0)


def lengthen(batch: Tensor, time_axis: int) -> LongBatch:
    """Each item followed by its last ``EXTRA`` part mirrored (a smooth continuation), along ``time_axis``."""
    axis, length = time_axis + 2, batch.shape[time_axis + 2]
    long = torch.cat([batch, batch.flip(axis).narrow(axis, 0, max(1, round(EXTRA * length)))], dim=axis)
    tail = long.narrow(axis, long.shape[axis] - length, length)
    return LongBatch(long, long.narrow(axis, 0, length), tail, time_axis)


#: one part of the check: (problem or None, what was seen).
Part = Callable[[Modality, LongBatch, Path], tuple[str | None, str]]


def save_part(modality: Modality, items: LongBatch, folder: Path) -> tuple[str | None, str]:
    """The first file ``save`` writes for a long item is larger in proportion than for its head."""
    long, short = modality.save(items.long[0], folder / "long"), modality.save(items.head[0], folder / "declared")
    problem = written_problem(long, "save()") or written_problem(short, "save()")
    if problem:
        return problem, ""
    sizes = Path(long[0]).stat().st_size, Path(short[0]).stat().st_size
    seen = f"save wrote {Path(long[0]).name} {sizes[0] / sizes[1]:.2f}x the size"
    if sizes[0] < items.least_growth * sizes[1]:
        return (f"save() of an item of {items.steps} wrote {Path(long[0]).name} of {sizes[0]} bytes, hardly more "
                f"than {sizes[1]} bytes for its declared length: it crops or squeezes the item; {FIX}"), seen
    return None, seen


def same_files(first: list[Path], second: list[Path]) -> list[str]:
    """Names of the files of ``first`` whose bytes equal those of ``second``'s file at the same place."""
    return [Path(a).name for a, b in zip(first, second) if Path(a).read_bytes() == Path(b).read_bytes()]


def grid_part(modality: Modality, items: LongBatch, folder: Path) -> tuple[str | None, str]:
    """``save_grid`` of a long batch writes files unlike those of either crop."""
    long = modality.save_grid(items.long, folder / "long_grid")
    problem = written_problem(long, "save_grid()")
    if problem:
        return problem, ""
    for end, crop in (("first", items.head), ("last", items.tail)):
        same = same_files(long, modality.save_grid(crop, folder / f"{end}_grid"))
        if same:
            return (f"save_grid() of items of {items.steps} writes {', '.join(same)} byte for byte as for their "
                    f"{end} steps alone: the rest is cropped; {FIX}"), ""
    return None, "save_grid shows every step"


def same_medium(a: Rendered, b: Rendered) -> bool:
    return a.kind == b.kind and a.data.shape == b.data.shape and np.array_equal(a.data, b.data)


def medium_problem(medium: Rendered, head: Rendered, tail: Rendered, items: LongBatch) -> str | None:
    """A medium with a time axis must be longer along it than the head's, in proportion; any other must
    differ from both crops'."""
    if medium.time_axis is not None:
        long, short = medium.data.shape[medium.time_axis], head.data.shape[medium.time_axis]
        if long < items.least_growth * short:
            return (f"render() of items of {items.steps} gives {medium.kind} of {long} steps along its time_axis "
                    f"{medium.time_axis}, hardly more than {short} for their declared length: it crops or squeezes "
                    f"them; {FIX}")
    elif same_medium(medium, head) or same_medium(medium, tail):
        return (f"render() of items of {items.steps} gives the same {medium.kind} as for their first or last "
                f"steps alone: the rest is cropped; {FIX}")
    return None


def render_part(modality: Modality, items: LongBatch, folder: Path) -> tuple[str | None, str]:
    """Every medium ``render`` gives for a long batch shows the extra steps."""
    long = rendered_list(modality.render(items.long))
    heads, tails = rendered_list(modality.render(items.head)), rendered_list(modality.render(items.tail))
    problems = [rendered_problem(m) or medium_problem(m, h, t, items) for m, h, t in zip(long, heads, tails)]
    problem = next((p for p in problems if p), None) if long else "render() returned nothing"
    return problem, f"render gives {', '.join(f'{m.kind} {list(m.data.shape)}' for m in long)}"


PARTS: tuple[tuple[str, Part], ...] = (("save()", save_part), ("save_grid()", grid_part), ("render()", render_part))


def check_long_items(subject: PluginUnderTest) -> list[CheckResult]:
    """Items longer than ``shape`` along ``time_axis`` (what ``extend`` makes) are saved, gridded
    and rendered in full: the first saved file and timed media grow with them, and no file or
    picture equals that of the items cropped to ``shape``."""
    if subject.main_data is None:
        return failed(CHECK, NO_DATA)
    modality = subject.modality(subject.main_data)
    axis = modality.time_axis
    if axis is None or not 0 <= axis < modality.spatial_rank:
        return skipped(CHECK, f"not run: time_axis is {axis}, so nothing makes items longer along it")
    items, folder, seen = lengthen(subject.batch(2), axis), subject.folder(CHECK), []
    for call, part in PARTS:
        try:
            problem, note = part(modality, items, folder)
        except Exception as err:  # what the author must change: a method refusing a longer item
            problem = f"{call} raised {describe_error(err)} for items of {items.steps}; {FIX}"
        if problem:
            return failed(CHECK, problem)
        seen.append(note)
    return passed(CHECK, f"items of {items.steps}: {'; '.join(seen)}")

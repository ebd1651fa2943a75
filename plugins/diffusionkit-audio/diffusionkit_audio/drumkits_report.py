"""What became of every sample of a drum kits dataset: the tables :meth:`DrumKitsDataset.report` prints."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from .oneshots import DROP_REASONS


@dataclass(frozen=True)
class Entry:
    """One sample file of one instrument and its fate."""

    kit: str
    instrument: str
    source: str
    label: str | None  # its class; None: no keyword matched the instrument name
    status: str  # "kept", "not_kept" (a class not chosen), "unmapped", or a DROP_REASONS key
    detail: str = ""


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    """Rows as text columns: the first left-aligned, the others right-aligned."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in cells]


def per_class(entries: list[Entry], classes: list[str]) -> dict[str, dict[str, int]]:
    """``{class: {"samples", "kept", <reason>...}}`` for the chosen classes."""
    counts = {name: {"samples": 0, "kept": 0, **{reason: 0 for reason in DROP_REASONS}} for name in classes}
    for entry in entries:
        if entry.label in counts and entry.status not in ("not_kept", "unmapped"):
            counts[entry.label]["samples"] += 1
            counts[entry.label][entry.status] += 1
    return counts


def per_kit(entries: list[Entry], classes: list[str]) -> dict[str, dict[str, int]]:
    """``{kit: {class: kept, ..., "kept", "dropped", "not_kept", "unmapped"}}``."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys([*classes, "kept", "dropped",
                                                                           "not_kept", "unmapped"], 0))
    for entry in entries:
        row = counts[entry.kit]
        if entry.status == "kept":
            row[entry.label] += 1
            row["kept"] += 1
        else:
            row[entry.status if entry.status in ("not_kept", "unmapped") else "dropped"] += 1
    return dict(counts)


def _class_lines(entries: list[Entry], classes: list[str]) -> list[str]:
    counts = per_class(entries, classes)
    reasons = [r for r in DROP_REASONS if any(c[r] for c in counts.values())] or ["duplicate"]
    rows = [[name, c["samples"], c["kept"], *(c[r] for r in reasons)] for name, c in counts.items()]
    rows.append(["total", *(sum(row[i] for row in rows) for i in range(1, len(rows[0])))])
    return _table(["class", "samples", "kept", *reasons], rows)


def _kit_lines(entries: list[Entry], classes: list[str]) -> list[str]:
    counts = per_kit(entries, classes)
    columns = [*classes, "kept", "dropped", "not_kept", "unmapped"]
    return _table(["kit", *columns], [[kit, *(row[c] for c in columns)] for kit, row in counts.items()])


def _others(entries: list[Entry]) -> str:
    found = Counter(e.label for e in entries if e.status == "not_kept")
    return ", ".join(f"{name} {count}" for name, count in found.most_common()) or "none"


#: unmapped instrument names shown per kit (the rest are counted; ``summary()`` lists every one).
UNMAPPED_SHOWN = 16


def _unmapped(entries: list[Entry]) -> list[str]:
    names: dict[str, Counter] = defaultdict(Counter)
    for entry in entries:
        if entry.status == "unmapped":
            names[entry.kit][entry.instrument.strip() or "(no name)"] += 1
    lines = []
    for kit, found in names.items():
        shown = [f"'{name}'" + (f" x{n}" if n > 1 else "") for name, n in list(found.items())[:UNMAPPED_SHOWN]]
        more = len(found) - len(shown)
        lines.append(f"  {kit}: {', '.join(shown)}" + (f" and {more} more" if more > 0 else ""))
    return lines


def _dropped(entries: list[Entry]) -> list[str]:
    return [f"  {e.status:<10} {e.label:<11} {e.source} ('{e.instrument}'): {e.detail}"
            for e in entries if e.status in DROP_REASONS]


def format_report(header: list[str], entries: list[Entry], classes: list[str], missing: list[str]) -> str:
    """The whole report as text."""
    lines = [*header, "", "per class (samples of the chosen classes; dropped by reason):",
             *_class_lines(entries, classes), "", "per kit (kept per class):", *_kit_lines(entries, classes), "",
             f"not kept (classes not in data.dataset.classes): {_others(entries)}"]
    unmapped = _unmapped(entries)
    lines += ["unmapped instruments (no keyword; add data.dataset.keywords={class: [words]}):" if unmapped
              else "unmapped instruments: none", *unmapped]
    if missing:
        lines.append(f"files named in drumkit.xml but missing: {len(missing)} ({', '.join(sorted(set(missing))[:8])}"
                     + (", ...)" if len(set(missing)) > 8 else ")"))
    dropped = _dropped(entries)
    return "\n".join(lines + (["dropped samples:", *dropped] if dropped else ["dropped samples: none"])) + "\n"

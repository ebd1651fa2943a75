"""A dataset's own account of its data (what it kept and dropped, and why), shown when a run
starts and kept in the run folder.

A dataset offers one by a ``report() -> str`` method; the core calls it and knows nothing else
about it (no medium, no format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffusionkit.atomic import atomic_path
from diffusionkit.training.processes import owns_run_folder

#: the file in the run folder that holds the dataset's report.
REPORT_FILE = "data_report.txt"


def write_data_report(dataset: Any, run_dir: Path) -> Path | None:
    """Print ``dataset.report()`` and write it to ``run_dir/data_report.txt`` when the dataset has
    such a method (the first process only); return the file written, else None."""
    report = getattr(dataset, "report", None)
    if not callable(report) or not owns_run_folder():
        return None
    text = str(report()).rstrip("\n") + "\n"
    path = Path(run_dir) / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"data report: {path}")
    return path

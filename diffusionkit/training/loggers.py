"""A CSV metrics log that a resumed run continues instead of deleting."""

from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from diffusionkit.atomic import atomic_path


class ContinuedWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv`` when a run starts in the same
    folder (a resume). This one keeps it and, at its first save, drops the rows from the first
    step it logs on: after resuming from step S the file holds the earlier run up to S, then the
    continuation (rows the earlier run logged after its last checkpoint were undone by the resume)."""

    def _check_log_dir_exists(self) -> None:
        self._continue_file = self._fs.isfile(self.metrics_file_path)

    def save(self) -> None:
        if self.metrics and self._continue_file:
            self._continue_file = False
            self._keep_rows_before(min(int(m["step"]) for m in self.metrics))
        super().save()

    def _keep_rows_before(self, step: int) -> None:
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            header = list(reader.fieldnames or [])
            rows = [row for row in reader  # a row a kill cut short lacks its last fields (None)
                    if None not in row.values() and row["step"] and int(float(row["step"])) < step]
        with atomic_path(self.metrics_file_path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(header)


class ContinuedCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` writing through :class:`ContinuedWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuedWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedWriter(log_dir=self.log_dir)
        return self._experiment

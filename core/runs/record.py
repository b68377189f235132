"""``RunRecord``: what a run folder holds, as the CLI, the GUI, evaluate, export and resume
read it. Each part is read on first use and kept (a listing of hundreds of runs reads only
config.json and metrics.csv). No torch: the checkpoint is opened only to resume
(core.runs.checkpoint)."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

from core.errors import TransferLabError
from core.runs import files
from core.runs.layout import RunPaths
from core.runs.lock import is_locked


class RunRecord:
    def __init__(self, run_dir: str | Path):
        self.paths = RunPaths(run_dir)

    @classmethod
    def open(cls, run_dir: str | Path) -> "RunRecord":
        """The run in ``run_dir``; a folder without a readable config.json is refused."""
        record = cls(run_dir)
        record.settings  # noqa: B018 - raises TransferLabError when it is not a run
        return record

    @property
    def path(self) -> Path:
        return self.paths.dir

    @property
    def name(self) -> str:
        """The user's label, else the folder's name."""
        return self.label or self.path.name

    # --- recorded settings ------------------------------------------------------------------
    @cached_property
    def settings(self) -> dict:
        """config.json as written (also keys this version does not know)."""
        return files.read_settings(self.path)

    @cached_property
    def config(self):
        """The run's TrainConfig."""
        from core.config import TrainConfig

        return TrainConfig.from_dict(self.settings)

    # --- what it did --------------------------------------------------------------------------
    @cached_property
    def history(self) -> list[dict]:
        """One dict per finished epoch (metrics.csv); raises when there is none."""
        return files.read_metrics(self.path)

    def history_or_empty(self) -> list[dict]:
        try:
            return self.history
        except TransferLabError:
            return []

    @cached_property
    def batches(self) -> list[dict]:
        return files.read_batches(self.path)

    @cached_property
    def freeze_changes(self) -> list[dict] | None:
        return files.read_freeze_changes(self.path)

    @property
    def decisions(self) -> dict[str, dict]:
        """The speed choices the run made (core.training.tuner), per workload."""
        return files.read_decisions(self.path)

    @cached_property
    def split(self):
        """The split record (core.runs.split.SplitRecord), None for runs made before it."""
        from core.runs.split import SplitRecord

        return SplitRecord.read(self.paths.split)

    @property
    def review_state(self) -> str | None:
        """The review journal state its data folder had when the run started
        (core.review.journal.journal_state, kept in split.json): None for a built-in set,
        an archive, a folder never reviewed, a run older than that record or a damaged one."""
        try:
            return self.split.review if self.split is not None else None
        except TransferLabError:
            return None

    @property
    def evaluations(self) -> list[Path]:
        """Saved evaluations' metrics JSONs, newest first (core.runs.evaluations)."""
        return self.paths.evaluations()

    # --- state ------------------------------------------------------------------------------
    @property
    def status(self) -> dict | None:
        """The recorded status (read each time: it changes while the run trains)."""
        return files.read_status(self.path)

    @property
    def label(self) -> str:
        return files.read_label(self.path)

    @property
    def busy(self) -> bool:
        """Some process holds the run's lock (it is training, or being deleted)."""
        return is_locked(self.path)

    @property
    def has_model(self) -> bool:
        return self.paths.model.is_file()

    @property
    def has_checkpoint(self) -> bool:
        return self.paths.checkpoint.is_file()

    @property
    def started(self) -> float:
        """When the run first started (status.json; older runs: config.json's time)."""
        recorded = (self.status or {}).get("started")
        return recorded if isinstance(recorded, (int, float)) else \
            self.paths.config.stat().st_mtime

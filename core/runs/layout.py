"""A run folder's layout: the name of every file a run writes and the version of each format.

The one home of these names: every other module asks ``RunPaths`` or imports the constant
(tests/test_run_folder.py fails when a name is spelled anywhere else in core/ or gui/).
No torch here: the GUI reads run folders while PyTorch is still loading.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.json"  # the run's TrainConfig (core.config), rewritten at each (re)start
METRICS_FILE = "metrics.csv"  # one row per finished epoch (METRIC_FIELDS)
BATCHES_FILE = "batches.csv"  # one row per batch (BATCH_FIELDS), for reopened charts
FREEZE_CHANGES_FILE = "freeze_changes.json"  # every start, resume, schedule and user change
STATUS_FILE = "status.json"  # written by the engine: running, then finished/stopped/failed
LABEL_FILE = "run-label.txt"  # the user's name for the run (the folder keeps its own)
SPLIT_FILE = "split.json"  # which images the run trains and validates on (core.runs.split)
CHECKPOINT_FILE = "checkpoint.pt"  # everything needed to continue (core.runs.checkpoint)
MODEL_FILE = "model.pt"  # the best model, ready for predict (core.models.model_file)
DECISIONS_FILE = "decisions.json"  # the speed choices the run made (core.training.tuner)
LOCK_FILE = "training.lock"  # held by the one process that trains (or deletes) the run
EVALUATION_PREFIX = "evaluation-"  # evaluation-<source>.csv / .json (core.runs.evaluations)

# any of these makes a folder a run (a new run refuses such a folder without --resume)
RUN_MARKERS = (CONFIG_FILE, CHECKPOINT_FILE, MODEL_FILE, METRICS_FILE)
# every file a run writes in its folder: what deleting a run removes (anything else is the
# user's and stays)
RUN_OUTPUTS = (*RUN_MARKERS, BATCHES_FILE, FREEZE_CHANGES_FILE, STATUS_FILE, LABEL_FILE,
               SPLIT_FILE, DECISIONS_FILE, LOCK_FILE)
RUN_OUTPUT_PATTERNS = (f"{EVALUATION_PREFIX}*.csv", f"{EVALUATION_PREFIX}*.json")

METRIC_FIELDS = ["epoch", "phase", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                 "seconds", "images_per_s"]
BATCH_FIELDS = ["epoch", "batch", "batches", "loss", "lr"]
STATUSES = ("running", "finished", "stopped", "failed")


@dataclass(frozen=True)
class RunPaths:
    """Where each file of the run in ``dir`` is."""
    dir: Path

    def __post_init__(self):
        object.__setattr__(self, "dir", Path(self.dir).expanduser())

    config = property(lambda self: self.dir / CONFIG_FILE)
    metrics = property(lambda self: self.dir / METRICS_FILE)
    batches = property(lambda self: self.dir / BATCHES_FILE)
    freeze_changes = property(lambda self: self.dir / FREEZE_CHANGES_FILE)
    status = property(lambda self: self.dir / STATUS_FILE)
    label = property(lambda self: self.dir / LABEL_FILE)
    split = property(lambda self: self.dir / SPLIT_FILE)
    checkpoint = property(lambda self: self.dir / CHECKPOINT_FILE)
    model = property(lambda self: self.dir / MODEL_FILE)
    decisions = property(lambda self: self.dir / DECISIONS_FILE)
    lock = property(lambda self: self.dir / LOCK_FILE)

    def evaluations(self) -> list[Path]:
        """The evaluations' metrics JSONs saved here, newest first."""
        found = self.dir.glob(f"{EVALUATION_PREFIX}*.json")
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    def outputs(self) -> list[str]:
        """The names of every file a run may have written here (what deleting it removes)."""
        return sorted(set(RUN_OUTPUTS) | {p.name for pattern in RUN_OUTPUT_PATTERNS
                                          for p in self.dir.glob(pattern)})


def is_run_dir(path: str | Path) -> bool:
    paths = RunPaths(path)
    return paths.dir.is_dir() and any((paths.dir / f).exists() for f in RUN_MARKERS)


def new_run_dir(model: str, job_id: str = "") -> Path:
    """A fresh folder under the runs folder. Under torchrun, ``job_id`` (one per torchrun
    job, the same after an elastic restart: core.training.torchrun) names it instead of the
    time, so a restarted worker finds the same folder again."""
    from core.paths import runs_dir

    if job_id:
        return runs_dir() / f"torchrun-{job_id}-{model}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_dir() / f"{stamp}-{model}"
    n = 1
    while path.exists():
        n += 1
        path = runs_dir() / f"{stamp}-{model}-{n}"
    return path

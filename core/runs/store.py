"""Writing a run folder: the training process's side (rank 0 of a torchrun job).

``RunStore(dir, resume)`` only checks (no file is written, no folder made): a folder that
already holds a run is refused unless resuming, one being trained by another process is
refused. ``begin()`` takes the run's lock (core.runs.lock) and makes the folder: the trainer
calls it once every setting has been checked, so a mistake leaves nothing behind. The lock is
held until ``close()`` or the process ends. Every write is atomic (core.paths).
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

from core.errors import TransferLabError
from core.paths import remove_stale_temp_files
from core.runs import files
from core.runs.checkpoint import load_checkpoint, save_torch
from core.runs.layout import RUN_OUTPUTS, RunPaths, is_run_dir
from core.runs.lock import RunLock, is_locked


class RunStore:
    def __init__(self, run_dir: str | Path, resume: bool = False, writer: bool = True):
        self.paths = RunPaths(run_dir)
        self.dir = self.paths.dir
        self.resume, self.writer = resume, writer
        self.removed_temps: list[str] = []
        self.lock = RunLock(self.dir)
        if not writer:
            return
        if is_locked(self.dir):
            self.lock.acquire()  # raises RunBusy, with the pid status.json names
        if not resume and is_run_dir(self.dir):
            raise TransferLabError(
                f"{self.dir} already holds a training run. Use --resume to continue it, or "
                f"choose another --out folder (nothing was changed).")
        existing = next(p for p in (self.dir, *self.dir.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise TransferLabError(f"Cannot create the run folder {self.dir}: {existing} is "
                                   f"not a writable folder.")
        if resume and self.dir.is_dir():  # an existing run: keep others out from now on
            self.begin()

    def begin(self) -> None:
        """Take the run's lock (making the folder) and check again under it: a run started
        in the meantime is refused. On resume, removes what killed saves left behind."""
        if self.lock.held or not self.writer:
            return
        self.lock.acquire()
        if not self.resume and is_run_dir(self.dir):
            self.close()
            raise TransferLabError(
                f"{self.dir} already holds a training run (started meanwhile by another "
                f"process). Use --resume to continue it, or choose another --out folder.")
        if self.resume:
            self.removed_temps = self.remove_stale_temps()

    def close(self) -> None:
        self.lock.release()

    @property
    def checkpoint_path(self) -> Path:
        return self.paths.checkpoint

    @property
    def model_path(self) -> Path:
        return self.paths.model

    # --- writing (the first write begins the run) -----------------------------------------
    def write_config(self, config: dict) -> None:
        self.begin()
        files.write_config(self.dir, config)

    def write_metrics(self, history: list[dict], batches: list[dict] | None = None) -> None:
        self.begin()
        files.write_metrics_csv(self.paths.metrics, history)
        if batches is not None:
            files.write_batches_csv(self.paths.batches, batches)

    def write_freeze_changes(self, changes: list[dict]) -> None:
        self.begin()
        files.write_json(self.paths.freeze_changes, changes)

    def write_status(self, status: str, epochs_done: int, message: str = "",
                     started: float | None = None) -> None:
        self.begin()
        files.write_status(self.dir, status, epochs_done, message, started)

    def write_split(self, record: dict) -> None:
        self.begin()
        files.write_json(self.paths.split, record)

    def save_checkpoint(self, payload: dict) -> None:
        self.begin()
        save_torch(self.paths.checkpoint, payload)

    def save_model(self, payload: dict) -> None:
        self.begin()
        save_torch(self.paths.model, payload)

    def remove_stale_temps(self) -> list[str]:
        """Delete the temp files that a killed save of this run's files left
        (``.checkpoint.pt.<pid>-<id>.tmp``...; core.paths decides what is stale); other
        files are left alone. Returns their names."""
        removed = []
        for name in RUN_OUTPUTS:
            removed += remove_stale_temp_files(self.dir, glob.escape(name))
        return [p.name for p in removed]

    # --- reading ----------------------------------------------------------------------------
    def load_checkpoint(self, model: str | None = None,
                        classes: list[str] | None = None) -> dict:
        return load_checkpoint(self.paths.checkpoint, model, classes)


def delete_run(run_dir: str | Path) -> list[str]:
    """Delete a run: the files a run writes (RUN_OUTPUTS, its evaluations, temp files a killed
    save left), then the folder if nothing else is in it. Refuses a folder that is not a run
    and a run that is being trained (its lock is taken for the deletion). Returns the names
    of the entries that were kept (anything the run did not write)."""
    from core.catalog import MODEL_NAMES

    paths = RunPaths(run_dir)
    try:
        config = files.read_settings(paths.dir)
    except TransferLabError:
        config = None
    ours = isinstance(config, dict) and config.get("model") in MODEL_NAMES and "data" in config \
        and (paths.status.is_file() or paths.metrics.is_file())
    if not ours:
        raise TransferLabError(f"{paths.dir} is not a TransferLab run folder: nothing was "
                               f"deleted.")
    lock = RunLock(paths.dir)
    lock.acquire(nothing="deleted")
    status = files.read_status(paths.dir)
    if status is not None and status["status"] == "running":  # (a TransferLab without locks,
        lock.release()                                        # or another machine's process)
        raise TransferLabError(f"{paths.dir.name} is still training (process "
                               f"{status['pid']}): stop it first. Nothing was deleted.")
    names = [n for n in paths.outputs() if n not in (paths.config.name, paths.lock.name)]
    try:
        for name in [*names, paths.config.name]:  # config.json last: a half-deleted run
            _unlink(paths.dir / name)             # still lists as a run
    finally:
        lock.release()
    _unlink(paths.lock)
    kept = sorted(p.name for p in paths.dir.iterdir())
    if not kept:
        try:
            paths.dir.rmdir()
        except OSError:
            pass
    return kept


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # (a file another program holds open on Windows): listed as kept
    remove_stale_temp_files(path.parent, glob.escape(path.name))

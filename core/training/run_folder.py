"""A run's folder: ``config.json``, ``metrics.csv``, ``checkpoint.pt`` (to resume) and
``model.pt`` (the best model, ready for ``predict``). Every write is atomic."""
from __future__ import annotations

import csv
import glob
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
from core.errors import TransferLabError
from core.training.autotune import DECISIONS_FILE
from core.paths import (atomic_path, process_alive, remove_stale_temp_files, runs_dir,
                        write_csv_atomic, write_text_atomic)

BATCH_FIELDS = ["epoch", "batch", "batches", "loss", "lr"]
METRIC_FIELDS = ["epoch", "phase", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                 "seconds", "images_per_s"]


RUN_FILES = ("config.json", "checkpoint.pt", "model.pt", "metrics.csv")
STATUS_FILE = "status.json"  # written by the engine: running, then finished/stopped/failed
LABEL_FILE = "run-label.txt"  # the user's name for the run (the folder keeps its own)
SILENT_AFTER_S = 6 * 3600  # a "running" record not rewritten for this long is a dead run
# every file a run writes in its folder (evaluations add evaluation-*.csv/.json): what
# deleting a run removes; anything else in the folder is the user's and stays
RUN_OUTPUTS = (*RUN_FILES, "batches.csv", "freeze_changes.json", STATUS_FILE, LABEL_FILE,
               DECISIONS_FILE)
RUN_OUTPUT_PATTERNS = ("evaluation-*.csv", "evaluation-*.json")
STATUSES = ("running", "finished", "stopped", "failed")


def new_run_dir(model: str, run_id: str = "") -> Path:
    """A fresh folder under the runs folder. Under torchrun, ``run_id`` (its rendezvous id)
    names it instead of the time, so an elastic restart finds the same folder again."""
    if run_id:
        return runs_dir() / f"torchrun-{run_id}-{model}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_dir() / f"{stamp}-{model}"
    n = 1
    while path.exists():
        n += 1
        path = runs_dir() / f"{stamp}-{model}-{n}"
    return path


def is_run_dir(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any((path / f).exists() for f in RUN_FILES)


class RunStore:
    """A run's folder. It is created at the first write (a run that fails to start leaves
    nothing behind); a folder that already holds a run is refused unless resuming."""

    def __init__(self, run_dir: str | Path, resume: bool = False, writer: bool = True):
        self.dir = Path(run_dir).expanduser()
        self.writer = writer
        self.removed_temps: list[str] = []
        if not writer:
            return
        if resume and (pid := live_writer(self.dir)) is not None:
            raise TransferLabError(f"{self.dir} is being trained by another process ({pid}): "
                                   f"stop it first (nothing was changed).")
        if not resume and is_run_dir(self.dir):
            raise TransferLabError(
                f"{self.dir} already holds a training run. Use --resume to continue it, or "
                f"choose another --out folder (nothing was changed).")
        existing = next(p for p in (self.dir, *self.dir.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise TransferLabError(f"Cannot create the run folder {self.dir}: {existing} is "
                                   f"not a writable folder.")
        self.removed_temps = self.remove_stale_temps() if resume and self.dir.is_dir() else []

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def model_path(self) -> Path:
        return self.dir / "model.pt"

    def write_config(self, config: dict) -> None:
        write_text_atomic(self.dir / "config.json", json.dumps(config, indent=2) + "\n")

    def write_metrics(self, history: list[dict], batches: list[dict] | None = None) -> None:
        write_metrics_csv(self.dir / "metrics.csv", history)
        if batches is not None:
            write_csv_atomic(self.dir / "batches.csv", batches, BATCH_FIELDS)

    def save_checkpoint(self, payload: dict) -> None:
        _save(self.checkpoint_path, payload)

    def save_model(self, payload: dict) -> None:
        _save(self.model_path, payload)

    def remove_stale_temps(self) -> list[str]:
        """Delete the temp files that a killed save of this run's files left
        (``.checkpoint.pt.<pid>-<id>.tmp``...; core.paths decides what is stale); other
        files are left alone. Returns their names."""
        removed = []
        for name in RUN_OUTPUTS:
            removed += remove_stale_temp_files(self.dir, glob.escape(name))
        return [p.name for p in removed]

    def load_checkpoint(self) -> dict:
        if not self.checkpoint_path.exists():
            raise TransferLabError(f"No checkpoint to resume in {self.dir}.")
        try:
            ck = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - damaged, truncated or foreign files
            raise TransferLabError(f"{self.checkpoint_path} is damaged or not a TransferLab "
                                   f"checkpoint ({type(exc).__name__}).") from exc
        needed = ("epoch", "config", "classes", "state_dict", "optimizer", "history", "freeze")
        if not isinstance(ck, dict) or any(k not in ck for k in needed):
            raise TransferLabError(f"{self.checkpoint_path} is not a TransferLab checkpoint.")
        return ck


def _save(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except (OSError, RuntimeError) as exc:  # a full disk is a RuntimeError in torch.save
            raise TransferLabError(f"Cannot write {path}: {_write_failure(exc, tmp)}. The "
                                   f"previous {path.name} is unchanged.") from exc


def _write_failure(exc: BaseException, tmp: Path) -> str:
    """Why a save failed, in words. torch.save reports a full disk as an opaque
    "[enforce fail at inline_container.cc] unexpected pos" RuntimeError: say what it means."""
    import errno
    import shutil

    if getattr(exc, "errno", None) == errno.ENOSPC:
        return "the disk is full"
    try:
        free = shutil.disk_usage(tmp.parent).free
    except OSError:
        free = None
    if free is not None and free < 1024**2:  # the failed write used up the last of it
        return f"the disk is full ({free // 1024} KB free)"
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def read_config(run_dir: str | Path):
    """The run's TrainConfig, as config.json recorded it (to resume it)."""
    from core.config import TrainConfig

    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise TransferLabError(f"{run_dir} has no config.json to resume from.")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise ValueError("not a settings object")
    except (OSError, ValueError) as exc:
        raise TransferLabError(f"{path} is unreadable ({exc}).") from exc
    return TrainConfig.from_dict(saved)


def write_metrics_csv(path: str | Path, history: list[dict]) -> None:
    write_csv_atomic(path, history, METRIC_FIELDS)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """A finished run's history, for reopening its charts."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise TransferLabError(f"{run_dir} has no metrics.csv: is it a TransferLab run folder?")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        out.append({k: (row[k] if k == "phase" else float(row[k])) for k in METRIC_FIELDS})
        out[-1]["epoch"] = int(out[-1]["epoch"])
    return out


def read_batches(run_dir: str | Path) -> list[dict]:
    """Per-batch losses of a run (empty for runs without batches.csv)."""
    path = Path(run_dir) / "batches.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{"epoch": int(r["epoch"]), "batch": int(r["batch"]),
                 "batches": int(r["batches"]), "loss": float(r["loss"]), "lr": float(r["lr"])}
                for r in csv.DictReader(f)]


def history_row(event) -> dict:
    return {k: v for k, v in asdict(event).items() if k in METRIC_FIELDS}


# --- recorded status, label and deletion ----------------------------------------------------

def write_status(run_dir: str | Path, status: str, epochs_done: int, message: str = "",
                 started: float | None = None) -> None:
    """Record the run's state (the engine calls this at the start, after every epoch and at
    the end), with the process that runs it, so a list of runs can tell a live run from
    one whose process was killed."""
    import socket

    assert status in STATUSES, status
    write_text_atomic(Path(run_dir) / STATUS_FILE, json.dumps({
        "status": status, "epochs_done": epochs_done, "message": message,
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": started if started is not None else time.time(),
        "updated": time.time()}, indent=2) + "\n")


def read_status(run_dir: str | Path) -> dict | None:
    """The recorded status (None for runs older than status.json, or a damaged file). A
    "running" record whose process is gone on this machine reads as "failed"."""
    try:
        record = json.loads((Path(run_dir) / STATUS_FILE).read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("status") not in STATUSES:
            return None
    except (OSError, ValueError):
        return None
    if record["status"] == "running" and not _process_alive(record):
        record = dict(record, status="failed", message=(
            "The training process ended without finishing (killed or crashed); resuming "
            "continues after the last saved epoch."))
    return record


def live_writer(run_dir: str | Path) -> int | None:
    """The pid of another live process training this run (a second writer would mix their
    files), else None."""
    record = read_status(run_dir)
    if record is None or record["status"] != "running" or record.get("pid") == os.getpid():
        return None
    return record.get("pid") or -1


def _process_alive(record: dict) -> bool:
    """From this machine: whether its pid lives. From another (a torchrun node) or where pids
    cannot be asked (Windows), whether the record was rewritten lately (after every epoch)."""
    import socket

    pid, updated = record.get("pid"), record.get("updated")
    if isinstance(updated, (int, float)) and time.time() - updated > SILENT_AFTER_S:
        return False
    if record.get("host") != socket.gethostname() or not isinstance(pid, int):
        return True
    return process_alive(pid)


def read_label(run_dir: str | Path) -> str:
    try:
        return (Path(run_dir) / LABEL_FILE).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return ""


def set_label(run_dir: str | Path, label: str) -> None:
    """Name a run for the runs list (its folder is not renamed: paths in logs, evaluations
    and the user's scripts keep working). An empty label removes it."""
    label = " ".join(label.split())[:200]
    path = Path(run_dir) / LABEL_FILE
    if not (Path(run_dir) / "config.json").is_file():
        raise TransferLabError(f"{run_dir} is not a TransferLab run folder.")
    if label:
        write_text_atomic(path, label + "\n")
    else:
        path.unlink(missing_ok=True)


def delete_run(run_dir: str | Path) -> list[str]:
    """Delete a run: the files a run writes (RUN_OUTPUTS, its evaluations, temp files a killed
    save left), then the folder if nothing else is in it. Refuses a folder that is not a run
    and a run that is still training. Returns the names of the entries that were kept
    (anything the run did not write)."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    from core.catalog import MODEL_NAMES

    ours = isinstance(config, dict) and config.get("model") in MODEL_NAMES and "data" in config \
        and ((run_dir / STATUS_FILE).is_file() or (run_dir / "metrics.csv").is_file())
    if not ours:
        raise TransferLabError(f"{run_dir} is not a TransferLab run folder: nothing was "
                               f"deleted.")
    status = read_status(run_dir)
    if status is not None and status["status"] == "running":
        raise TransferLabError(f"{run_dir.name} is still training (process {status['pid']}): "
                               f"stop it first. Nothing was deleted.")
    names = set(RUN_OUTPUTS) | {p.name for pattern in RUN_OUTPUT_PATTERNS
                                for p in run_dir.glob(pattern)}
    for name in sorted(names - {"config.json"}) + ["config.json"]:  # config.json last:
        try:  # a half-deleted run still lists as a run
            (run_dir / name).unlink(missing_ok=True)
        except OSError:
            pass  # (a file another program holds open on Windows): listed as kept
        remove_stale_temp_files(run_dir, glob.escape(name))
    kept = sorted(p.name for p in run_dir.iterdir())
    if not kept:
        try:
            run_dir.rmdir()
        except OSError:
            pass
    return kept

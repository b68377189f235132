"""Reading and writing a run's small files: config.json, metrics.csv, batches.csv,
freeze_changes.json, decisions.json, status.json and run-label.txt. Every write is atomic (core.paths); no
torch here (checkpoint.pt and model.pt: core.runs.checkpoint)."""
from __future__ import annotations

import csv
import json
import os
import socket
import time
from dataclasses import asdict
from pathlib import Path

from core.errors import TransferLabError
from core.paths import process_alive, write_csv_atomic, write_text_atomic
from core.runs.layout import BATCH_FIELDS, METRIC_FIELDS, STATUSES, RunPaths

SILENT_AFTER_S = 6 * 3600  # a "running" record not rewritten for this long is a dead run


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: str | Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


# --- config.json ------------------------------------------------------------------------------

def read_settings(run_dir: str | Path) -> dict:
    """config.json as recorded (keys of newer versions included)."""
    path = RunPaths(run_dir).config
    if not path.exists():
        raise TransferLabError(f"{run_dir} has no {path.name}: is it a TransferLab run folder?")
    try:
        saved = _json(path)
        if not isinstance(saved, dict):
            raise ValueError("not a settings object")
    except (OSError, ValueError) as exc:
        raise TransferLabError(f"{path} is unreadable ({exc}).") from exc
    return saved


def write_config(run_dir: str | Path, config: dict) -> None:
    write_json(RunPaths(run_dir).config, config)


# --- metrics.csv and batches.csv --------------------------------------------------------------

def history_row(event) -> dict:
    """An EpochEnd event as a metrics.csv row."""
    return {k: v for k, v in asdict(event).items() if k in METRIC_FIELDS}


def write_metrics_csv(path: str | Path, history: list[dict]) -> None:
    write_csv_atomic(path, history, METRIC_FIELDS)


def write_batches_csv(path: str | Path, batches: list[dict]) -> None:
    write_csv_atomic(path, batches, BATCH_FIELDS)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """A run's history, one dict per finished epoch."""
    path = RunPaths(run_dir).metrics
    if not path.exists():
        raise TransferLabError(f"{run_dir} has no {path.name}: is it a TransferLab run folder?")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        out = [{k: (row[k] if k == "phase" else float(row[k])) for k in METRIC_FIELDS}
               for row in rows]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TransferLabError(f"{path} is unreadable ({type(exc).__name__}).") from exc
    for row in out:
        row["epoch"] = int(row["epoch"])
    return out


def read_batches(run_dir: str | Path) -> list[dict]:
    """Per-batch losses of a run (empty for runs without batches.csv, or a damaged one)."""
    path = RunPaths(run_dir).batches
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [{"epoch": int(r["epoch"]), "batch": int(r["batch"]),
                     "batches": int(r["batches"]), "loss": float(r["loss"]),
                     "lr": float(r["lr"])} for r in csv.DictReader(f)]
    except (OSError, ValueError, KeyError, TypeError):
        return []


# --- freeze_changes.json ----------------------------------------------------------------------

def read_freeze_changes(run_dir: str | Path) -> list[dict] | None:
    """A run's recorded freeze changes (``FreezeSchedule.changes``); None for runs without
    the file (older ones) or with a damaged one."""
    try:
        changes = _json(RunPaths(run_dir).freeze_changes)
    except (OSError, ValueError):
        return None
    return changes if isinstance(changes, list) else None


# --- decisions.json ---------------------------------------------------------------------------

def read_decisions(run_dir: str | Path) -> dict[str, dict]:
    """The speed choices a run made, per workload (core.training.tuner); empty for runs
    without the file (older ones) or with a damaged one."""
    try:
        data = _json(RunPaths(run_dir).decisions)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_decisions(run_dir: str | Path, record: dict[str, dict]) -> None:
    write_json(RunPaths(run_dir).decisions, record)


# --- status.json --------------------------------------------------------------------------------

def write_status(run_dir: str | Path, status: str, epochs_done: int, message: str = "",
                 started: float | None = None) -> None:
    """Record the run's state (the engine writes it at the start, after every epoch and at
    the end), with the process that runs it, for the list of runs. It is for display: the
    run's lock (core.runs.lock) is what keeps a second process out."""
    assert status in STATUSES, status
    write_json(RunPaths(run_dir).status, {
        "status": status, "epochs_done": epochs_done, "message": message,
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": started if started is not None else time.time(), "updated": time.time()})


def read_status(run_dir: str | Path) -> dict | None:
    """The recorded status (None for runs older than status.json, or a damaged file). A
    "running" record whose process is gone reads as "failed"."""
    try:
        record = _json(RunPaths(run_dir).status)
        if not isinstance(record, dict) or record.get("status") not in STATUSES:
            return None
    except (OSError, ValueError):
        return None
    if record["status"] == "running" and not _process_alive(record):
        record = dict(record, status="failed", message=(
            "The training process ended without finishing (killed or crashed); resuming "
            "continues after the last saved epoch."))
    return record


def _process_alive(record: dict) -> bool:
    """From this machine: whether its pid lives. From another (a torchrun node) or where pids
    cannot be asked (Windows), whether the record was rewritten lately (after every epoch)."""
    pid, updated = record.get("pid"), record.get("updated")
    if isinstance(updated, (int, float)) and time.time() - updated > SILENT_AFTER_S:
        return False
    if record.get("host") != socket.gethostname() or not isinstance(pid, int):
        return True
    return process_alive(pid)


# --- run-label.txt ------------------------------------------------------------------------------

def read_label(run_dir: str | Path) -> str:
    try:
        return RunPaths(run_dir).label.read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return ""


def set_label(run_dir: str | Path, label: str) -> None:
    """Name a run for the runs list (its folder is not renamed: paths in logs, evaluations
    and the user's scripts keep working). An empty label removes it."""
    label = " ".join(label.split())[:200]
    paths = RunPaths(run_dir)
    if not paths.config.is_file():
        raise TransferLabError(f"{run_dir} is not a TransferLab run folder.")
    if label:
        write_text_atomic(paths.label, label + "\n")
    else:
        paths.label.unlink(missing_ok=True)

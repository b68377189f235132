"""The runs history: one summary line per run folder, for the Runs view (and any front end).

A summary reads a run's config.json and metrics.csv once and is cached by their modification
times, so re-listing hundreds of runs only stats the files. The status is the one the engine
recorded in status.json (core.training.run_folder.read_status: a "running" run whose process
is gone reads as failed). Runs older than that file get it inferred: ``finished`` (every
planned epoch is in metrics.csv), ``running`` (files written in the last RUNNING_WINDOW_S
seconds), ``failed`` (no epoch ever finished), else ``stopped``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TransferLabError

RUNNING_WINDOW_S = 120
KEY_SETTINGS = ("lr", "batch_size", "image_size", "freeze", "freeze_epochs", "optimizer",
                "scheduler", "weights")


@dataclass
class RunSummary:
    path: str
    name: str  # the user's label, else the folder's name
    date: str  # YYYY-MM-DD HH:MM when the run first started
    model: str
    data: str
    epochs: int  # finished epochs
    planned_epochs: int
    best_val_acc: float | None
    wall_s: float
    status: str
    status_message: str = ""  # why it stopped or failed, as recorded
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


_cache: dict[str, tuple[tuple, RunSummary]] = {}


def _stamp(run_dir: Path) -> tuple:
    from core.training.run_folder import LABEL_FILE

    out = []
    for name in ("config.json", "metrics.csv", "checkpoint.pt", LABEL_FILE):
        try:
            out.append((run_dir / name).stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(out)


def summarize(run_dir: str | Path, now: float | None = None) -> RunSummary | None:
    """The run's summary, or None for a folder that is not a run (no config.json)."""
    run_dir = Path(run_dir)
    stamp = _stamp(run_dir)
    if stamp[0] == 0:
        return None
    cached = _cache.get(str(run_dir))
    if cached is not None and cached[0] == stamp:
        summary = cached[1]
    else:
        summary = _read(run_dir)
        if summary is None:
            return None
        _cache[str(run_dir)] = (stamp, summary)
    summary.status, summary.status_message = _status(
        summary, max(stamp) / 1e9, time.time() if now is None else now)
    return summary


def _read(run_dir: Path) -> RunSummary | None:
    from core.training.run_folder import read_label, read_metrics, read_status

    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        history = read_metrics(run_dir)
    except (TransferLabError, OSError, ValueError, KeyError):
        history = []
    val = [h["val_acc"] for h in history]
    started = (read_status(run_dir) or {}).get("started") or \
        (run_dir / "config.json").stat().st_mtime  # (older runs: when config.json was written)
    return RunSummary(
        str(run_dir), read_label(run_dir) or run_dir.name,
        time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        str(config.get("model", "?")), Path(str(config.get("data", "?"))).name,
        len(history), int(config.get("epochs", 0) or 0), max(val) if val else None,
        sum(h["seconds"] for h in history), "", "", config, history)


def _status(s: RunSummary, last_write: float, now: float) -> tuple[str, str]:
    from core.training.run_folder import read_status

    record = read_status(s.path)
    if record is not None:
        return record["status"], str(record.get("message", ""))
    return _inferred_status(s, last_write, now), ""


def _inferred_status(s: RunSummary, last_write: float, now: float) -> str:
    """The status of a run older than status.json, guessed from its files."""
    if s.planned_epochs and s.epochs >= s.planned_epochs:
        return "finished"
    if now - last_write < RUNNING_WINDOW_S:
        return "running"
    return "failed" if s.epochs == 0 else "stopped"


def list_runs(roots, state=None) -> list[RunSummary]:
    """Every run folder directly inside each root (and each root that is a run itself)."""
    out = []
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        candidates = [root] + sorted(Path(e.path) for e in os.scandir(root) if e.is_dir())
        for i, path in enumerate(candidates):
            if state is not None and i % 50 == 0:
                state.check()
                state.report("Reading runs", i, len(candidates))
            summary = summarize(path)
            if summary is not None:
                out.append(summary)
    return out


def differing_settings(runs: list[RunSummary]) -> dict[str, list]:
    """Settings whose value is not the same in every run: {name: [value per run]}."""
    keys = sorted({k for r in runs for k in r.config})
    table = {k: [r.config.get(k) for r in runs] for k in keys}
    return {k: v for k, v in table.items() if any(x != v[0] for x in v)}

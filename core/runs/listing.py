"""The list of runs: one summary per run folder, for the Runs view and ``transferlab runs``.

A summary reads a run's config.json and metrics.csv once (through RunRecord) and is cached by
their modification times, so re-listing hundreds of runs only stats the files. The status is
the one the engine recorded in status.json (core.runs.files.read_status: a "running" run
whose process is gone reads as failed). Runs older than that file get it inferred:
``finished`` (every planned epoch is in metrics.csv), ``running`` (files written in the last
RUNNING_WINDOW_S seconds), ``failed`` (no epoch ever finished), else ``stopped``.
A summary also carries what the run recorded when it started: its data's review journal state
(split.json) and its speed choices (decisions.json); ``differing`` is the compare table.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import TransferLabError
from core.runs.record import RunRecord

RUNNING_WINDOW_S = 120
REVIEW_ROW = "data review state"  # the compare table's row for RunSummary.review_state
SPEED_ROW = "speed choice: {}"  # ... and for each of the tuner's decisions (decisions.json)


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
    has_model: bool = False
    has_checkpoint: bool = False
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    review_state: str | None = None  # the data's review journal state when it started
    decisions: dict = field(default_factory=dict)  # decisions.json: the speed choices made

    def to_json(self, history: bool = False) -> dict:
        d = asdict(self)
        if not history:
            d.pop("history")
        return d


_cache: dict[str, tuple[tuple, RunSummary]] = {}


def _stamp(record: RunRecord) -> tuple:
    p = record.paths
    out = []
    for path in (p.config, p.metrics, p.checkpoint, p.label, p.model, p.split, p.decisions):
        try:
            out.append(path.stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(out)


def summarize(run_dir: str | Path, now: float | None = None) -> RunSummary | None:
    """The run's summary, or None for a folder that is not a run (no config.json)."""
    record = RunRecord(run_dir)
    stamp = _stamp(record)
    if stamp[0] == 0:
        return None
    cached = _cache.get(str(record.path))
    if cached is not None and cached[0] == stamp:
        summary = cached[1]
    else:
        summary = _read(record)
        if summary is None:
            return None
        _cache[str(record.path)] = (stamp, summary)
    summary.status, summary.status_message = _status(
        record, summary, max(stamp) / 1e9, time.time() if now is None else now)
    return summary


def _read(record: RunRecord) -> RunSummary | None:
    try:
        config = record.settings
    except TransferLabError:
        return None
    history = record.history_or_empty()
    val = [h["val_acc"] for h in history]
    return RunSummary(
        str(record.path), record.name,
        time.strftime("%Y-%m-%d %H:%M", time.localtime(record.started)),
        str(config.get("model", "?")), Path(str(config.get("data", "?"))).name,
        len(history), _int(config.get("epochs")), max(val) if val else None,
        sum(h["seconds"] for h in history), "", "", record.has_model, record.has_checkpoint,
        config, history, record.review_state, record.decisions)


def _int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _status(record: RunRecord, s: RunSummary, last_write: float, now: float) -> tuple[str, str]:
    status = record.status
    if status is not None:
        return status["status"], str(status.get("message", ""))
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
    return _differing({k: [r.config.get(k) for r in runs] for k in keys})


def speed_choices(decisions: dict) -> dict[str, str]:
    """A run's decisions.json as {decision: what it chose}: one value, or the values it chose
    as what trained changed ("16 → 32": the frozen phase, then the unfrozen one)."""
    chosen: dict[str, list[str]] = {}
    for workload in decisions.values():
        for name, d in (workload.items() if isinstance(workload, dict) else ()):
            values = chosen.setdefault(name, [])
            value = str(d.get("choice") if isinstance(d, dict) else d)
            if not values or values[-1] != value:
                values.append(value)
    return {name: " → ".join(values) for name, values in chosen.items()}


def differing(runs: list[RunSummary]) -> dict[str, list]:
    """What the compare table lists: the differing settings, then what the runs recorded
    when they started (the data's review state, each speed choice) where it differs."""
    speed = [speed_choices(r.decisions) for r in runs]
    facts = {REVIEW_ROW: [r.review_state for r in runs]} | {
        SPEED_ROW.format(name): [s.get(name) for s in speed]
        for name in sorted({n for s in speed for n in s})}
    return differing_settings(runs) | _differing(facts)


def _differing(table: dict[str, list]) -> dict[str, list]:
    return {k: v for k, v in table.items() if any(x != v[0] for x in v)}

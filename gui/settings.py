"""Persistent settings: last dataset, model, hyper-parameters and window geometry.

An ini file under ``TRANSFERLAB_HOME`` when that is set (tests, portable use), otherwise the
platform's usual QSettings store.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings


def open_settings() -> QSettings:
    home = os.environ.get("TRANSFERLAB_HOME")
    if home:
        return QSettings(str(Path(home) / "settings.ini"), QSettings.IniFormat)
    return QSettings("TransferLab", "TransferLab")


def load_json(settings: QSettings, key: str, default):
    raw = settings.value(key)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return default


def save_json(settings: QSettings, key: str, value) -> None:
    settings.setValue(key, json.dumps(value))


RECENT_RUNS_KEY = "recentRuns"
MAX_RECENT_RUNS = 8


def recent_runs(settings: QSettings) -> list[str]:
    """Run folders opened, resumed or trained lately, newest first."""
    runs = load_json(settings, RECENT_RUNS_KEY, [])
    return [r for r in runs if isinstance(r, str)] if isinstance(runs, list) else []


def add_recent_run(settings: QSettings, run_dir: str) -> None:
    path = str(Path(run_dir).resolve())
    runs = [path] + [r for r in recent_runs(settings) if r != path]
    save_json(settings, RECENT_RUNS_KEY, runs[:MAX_RECENT_RUNS])


def forget_recent_runs(settings: QSettings) -> None:
    save_json(settings, RECENT_RUNS_KEY, [])

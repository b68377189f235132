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

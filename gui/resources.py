"""Locate files in resources/, from a source checkout or from the PyInstaller bundle."""
from __future__ import annotations

import sys
from pathlib import Path


def resource_path(name: str) -> Path:
    """PyInstaller unpacks data next to the executable (``sys._MEIPASS``); from source the
    folder sits beside gui/."""
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    return base / "resources" / name

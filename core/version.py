"""TransferLab's one version number, and the provenance every file it writes carries.

``pyproject.toml`` reads ``__version__`` from here (setuptools' ``attr:``, without importing
the package), ``transferlab --version`` prints it, and ``model.pt``, an export's metadata and
a run's ``config.json`` record ``made_by()`` under ``PROVENANCE_KEY``: this version with the
torch and timm versions that made the file. Nothing here imports torch or timm.
"""
from __future__ import annotations

import platform
import sys
from importlib import metadata

__version__ = "0.3.0"
PROVENANCE_KEY = "made_by"
LIBRARIES = ("torch", "timm")  # whose versions decide what a saved file holds


def library_version(name: str) -> str | None:
    """The version of an imported library (its own ``__version__``, e.g. "2.14.1+cu128"), else
    of the installed distribution, without importing it; None when it is not installed.
    Always a plain ``str``: torch's is a subclass that ``torch.load(weights_only=True)``
    refuses to unpickle."""
    module = sys.modules.get(name)
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return str(module.__version__)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def made_by() -> dict[str, str | None]:
    """{"transferlab": "0.3.0", "torch": "2.14.1", "timm": "1.0.31"}."""
    return {"transferlab": __version__} | {name: library_version(name) for name in LIBRARIES}


def stamp(record: dict) -> dict:
    """``record`` with ``made_by()`` under PROVENANCE_KEY: what model.pt, export metadata and
    config.json carry."""
    return record | {PROVENANCE_KEY: made_by()}


def version_text() -> str:
    """What ``--version`` prints: 'transferlab 0.3.0 (torch 2.14.1, timm 1.0.31, Python 3.11.7)'."""
    found = [f"{name} {v}" for name, v in made_by().items() if name != "transferlab" and v]
    found.append(f"Python {platform.python_version()}")
    return f"transferlab {__version__} ({', '.join(found)})"

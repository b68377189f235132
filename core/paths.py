"""Where TransferLab keeps things on disk, and atomic writes.

``TRANSFERLAB_HOME`` overrides every location (tests point it at a temp folder);
otherwise platformdirs gives the per-OS cache and data folders.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import platformdirs

APP = "TransferLab"


def _home() -> Path | None:
    value = os.environ.get("TRANSFERLAB_HOME")
    return Path(value) if value else None


def cache_dir() -> Path:
    """Decoded datasets and extracted archives: safe to delete, rebuilt on demand."""
    home = _home()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Downloaded datasets (CIFAR) and the default home of training runs."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temp path next to ``target``; rename it over ``target`` only on success.

    A crash or a full disk mid-write leaves the previous file intact, which is what keeps
    an earlier checkpoint usable when a later save fails.
    """
    from core.errors import TransferLabError

    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise TransferLabError(f"Cannot write to {target.parent}: {exc.strerror or exc}") from exc
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    from core.errors import TransferLabError

    with atomic_path(target) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:  # a full disk or a quota: say so, the old file stays
            raise TransferLabError(f"Cannot write {target}: {exc.strerror or exc}. The "
                                   f"previous {Path(target).name} is unchanged.") from exc


def write_csv_atomic(target: str | os.PathLike, rows: list[dict], fields: list[str]) -> None:
    """Rows of dicts as CSV (keys outside ``fields`` ignored), written atomically."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(target, buf.getvalue())

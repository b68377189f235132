"""A size cap for the decoded-image cache (``cache_dir()/decoded/*.pt``, written by
core.data.folder): when the entries add up to more than the cap, the least recently used
go first. "Used" is the file's modification time, refreshed on every cache hit, so no index
file has to be kept consistent with the folder (a crash cannot leave them disagreeing).

The cap: ``TRANSFERLAB_DECODED_CACHE_MB`` when set, else 4 GB. An entry bigger than the cap
on its own is not kept at all (the next run decodes again; it costs time, never data).
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CAP_BYTES = 4 * 1024**3
CAP_ENV = "TRANSFERLAB_DECODED_CACHE_MB"


def cap_bytes() -> int:
    value = os.environ.get(CAP_ENV)
    if value:
        try:
            return max(0, int(float(value) * 1024**2))
        except ValueError:
            pass  # a malformed value falls back to the default
    return DEFAULT_CAP_BYTES


def touch(entry: Path) -> None:
    """Mark ``entry`` as just used (a cache hit)."""
    try:
        os.utime(entry)
    except OSError:
        pass  # a read-only cache still serves hits; it only evicts less well


def entries(folder: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every finished entry, oldest first (temp files excluded)."""
    out = []
    for path in Path(folder).glob("*.pt"):
        try:
            st = path.stat()
        except OSError:
            continue  # deleted meanwhile by another process
        out.append((st.st_mtime, st.st_size, path))
    return sorted(out)


def enforce_cap(folder: Path, cap: int | None = None) -> list[Path]:
    """Delete least recently used entries until the folder is within ``cap``; returns them."""
    cap = cap_bytes() if cap is None else cap
    found = entries(folder)
    total = sum(size for _, size, _ in found)
    removed = []
    for _, size, path in found:
        if total <= cap:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue  # cannot delete it: try the next one
        total -= size
        removed.append(path)
    return removed

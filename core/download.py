"""Downloads with progress callbacks and an offline switch.

torchvision and torch.hub print tqdm bars to a terminal; the GUI needs numbers instead, so
TransferLab fetches files itself (into the same places those libraries look) and reports
``progress(done_bytes, total_bytes)``. ``TRANSFERLAB_OFFLINE=1`` forbids any network access
(the tests set it), which also makes "no network" errors reproducible.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Callable

from core.errors import TransferLabError
from core.paths import atomic_path

Progress = Callable[[int, int], None]
CHUNK = 1 << 16


def offline() -> bool:
    return os.environ.get("TRANSFERLAB_OFFLINE", "") not in ("", "0")


def download(url: str, dest: Path, progress: Progress | None = None,
             sha256_prefix: str | None = None, md5: str | None = None) -> Path:
    """Fetch ``url`` into ``dest`` atomically, checking a hash when one is given."""
    if offline() and not url.startswith("file:"):
        raise OSError("offline mode (TRANSFERLAB_OFFLINE is set)")
    sha, m5 = hashlib.sha256(), hashlib.md5()
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                sha.update(chunk)
                m5.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if sha256_prefix and not sha.hexdigest().startswith(sha256_prefix):
            raise TransferLabError(f"Downloaded {url} is corrupt (sha256 mismatch); try again.")
        if md5 and m5.hexdigest() != md5:
            raise TransferLabError(f"Downloaded {url} is corrupt (md5 mismatch); try again.")
    return dest

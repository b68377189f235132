"""Where TransferLab keeps things on disk, and atomic, durable writes.

``TRANSFERLAB_HOME`` overrides every location (tests point it at a temp folder);
otherwise platformdirs gives the per-OS cache and data folders.

Every file TransferLab writes goes through ``atomic_path`` (``write_text_atomic``,
``write_csv_atomic`` and ``torch.save`` of run files, exports, caches): written to a temp
file beside the target, the temp file flushed to disk (``fsync``), renamed over the target,
then the folder flushed, so that after a power cut the target is the old file or the new one,
whole (without the first ``fsync`` ext4 and XFS may persist the rename before the data: an
empty model.pt with the previous one already gone).
"""
from __future__ import annotations

import glob
import os
import secrets
import time
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


STALE_TEMP_AGE_S = 3600  # a temp file untouched this long belongs to no live save


def _temp_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _is_stale(tmp: Path) -> bool:
    """A temp file left by a killed save: its process is gone (POSIX), or it is old."""
    try:
        if time.time() - tmp.stat().st_mtime > STALE_TEMP_AGE_S:
            return True
    except OSError:
        return False
    pid = tmp.name.rsplit(".", 2)[-2].split("-")[0]
    if not pid.isdigit():
        return True  # the older naming (tempfile.mkstemp): no live writer makes these now
    return not process_alive(int(pid))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists; True where that cannot be asked
    (on Windows ``os.kill(pid, 0)`` would end the process)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by another user
    return True


def remove_stale_temp_files(folder: str | os.PathLike, name: str = "*") -> list[Path]:
    """Delete ``.NAME.*.tmp`` files that a killed save left in ``folder``; return them."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        if _is_stale(tmp):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass  # another process removed it first, or the folder is read-only
    return removed


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temp path next to ``target``; rename it over ``target`` only on success.

    A crash or a full disk mid-write leaves the previous file intact, which is what keeps
    an earlier checkpoint usable when a later save fails. The temp file is created with the
    user's umask (like any file the user makes; tempfile.mkstemp would make it owner-only),
    and a temp file that a killed save left for the same target is removed first.
    """
    from core.errors import TransferLabError

    target = Path(target)
    new_folder = not target.parent.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(target.parent, glob.escape(target.name))
        while True:
            tmp = _temp_name(target)
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
    except OSError as exc:
        raise TransferLabError(f"Cannot write to {target.parent}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        try:
            fsync_file(tmp)
            os.replace(tmp, target)
        except OSError as exc:  # EIO, ENOSPC from delayed allocation: the old file stays
            raise TransferLabError(f"Cannot write {target}: {exc.strerror or exc}. The "
                                   f"previous {target.name} is unchanged.") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    if new_folder:  # the folder's own entry, in its parent
        fsync_dir(target.parent.parent)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s data to the disk (the writer has closed it; opened for writing
    because Windows' fsync needs a writable handle)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush ``folder``'s entries (a rename into it) to the disk. POSIX only: Windows cannot
    open a folder for this (NTFS journals renames itself); file systems that refuse it
    (some network mounts) are left as they are."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # EINVAL on file systems without directory fsync: nothing more to do
    finally:
        os.close(fd)


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

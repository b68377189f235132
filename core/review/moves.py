"""Moving one dataset file without ever overwriting another, and syncing what was written.

``move_no_replace`` is atomic where the system allows it: Linux ``renameat2`` with
``RENAME_NOREPLACE``, Windows' ``rename`` (which refuses an existing target). Elsewhere, or on
a file system without ``RENAME_NOREPLACE``, the file is hard-linked to its new name and then
unlinked from the old one: for a moment both names exist and are the same file, a state
``settle`` (used by recovery) recognises and completes.
"""
from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

RENAME_NOREPLACE = 1  # linux/fs.h
AT_FDCWD = -100


def _libc_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # an old C library
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_renameat2 = _libc_renameat2()


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """True when done; False when this system or file system cannot do it this way."""
    if _renameat2 is None:
        return False
    if _renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def move_no_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move ``src`` to ``dst`` (same disk); ``FileExistsError`` if ``dst`` exists. On any
    failure both names are as they were."""
    src, dst = Path(src), Path(dst)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "already exists", str(dst))
    if os.name == "nt":
        os.rename(src, dst)  # Windows never replaces an existing file here
        return
    if _rename_noreplace(src, dst):
        return
    os.link(src, dst, follow_symlinks=False)
    try:
        os.unlink(src)
    except OSError:
        os.unlink(dst)  # the old name stays the only one
        raise


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def settle(src: Path, dst: Path) -> str:
    """Where an interrupted move of ``src`` to ``dst`` stands: "done", "todo" or "lost"
    (neither name exists). A half-done link (both names, one file) is completed first."""
    at_src, at_dst = os.path.lexists(src), os.path.lexists(dst)
    if at_src and at_dst and same_file(src, dst):
        os.unlink(src)
        return "done"
    if at_src:
        return "todo"
    return "done" if at_dst else "lost"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def writable(folder: Path) -> str:
    """Why files in ``folder`` cannot be moved ("" when they can): a read-only disk or
    folder. A folder whose permissions deny writing counts as read-only even for a user
    (root) whom the system would let write: it is how users protect a dataset."""
    try:
        st = folder.stat()
    except OSError as exc:
        return f"cannot read {folder}: {exc.strerror or exc}"
    if not os.access(folder, os.W_OK):
        return f"{folder} is on a read-only disk or not writable by you"
    if os.name == "posix" and not st.st_mode & 0o222:
        return f"{folder} is read-only (its permissions deny writing)"
    return ""

"""One process at a time on a run folder: an OS file lock (the ``filelock`` package: flock
on POSIX, msvcrt on Windows) on ``training.lock`` in the folder, held for the whole life of
the process that trains the run, and while a run is deleted. The OS releases it when that
process ends in any way (a crash, ``kill -9``), so a dead run never stays locked.

Checking status.json and then writing it left a window in which two ``--resume`` of one run
started together both passed; taking the lock is the check. status.json stays, for display.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import TransferLabError
from core.runs.layout import RunPaths


class RunBusy(TransferLabError):
    """Another process holds the run's lock."""


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.paths = RunPaths(run_dir)
        self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self, nothing: str = "changed") -> None:
        """Take the lock now or raise RunBusy (never waits). Makes the folder if needed."""
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return
        try:
            self.paths.dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.paths.lock, thread_local=False)
            lock.acquire(timeout=0)
        except Timeout:
            raise RunBusy(busy_message(self.paths.dir, nothing)) from None
        except OSError as exc:
            raise TransferLabError(f"Cannot write to {self.paths.dir}: "
                                   f"{exc.strerror or exc}.") from exc
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def is_locked(run_dir: str | Path) -> bool:
    """Whether some process (this one included, through another RunLock) holds the run's
    lock. Creates nothing."""
    paths = RunPaths(run_dir)
    if not paths.lock.exists():
        return False
    probe = RunLock(paths.dir)
    try:
        probe.acquire()
    except RunBusy:
        return True
    except TransferLabError:
        return False  # a read-only folder: nobody can be training there
    probe.release()
    return False


def busy_message(run_dir: Path, nothing: str = "changed") -> str:
    from core.runs.files import read_status

    pid = (read_status(run_dir) or {}).get("pid")
    who = f"another process ({pid})" if pid else "another process"
    return f"{run_dir} is being trained by {who}: stop it first (nothing was {nothing})."

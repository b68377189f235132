"""A small state object that carries progress reports and cancellation into core code.

Modelled on Orange's ``TaskState``: long-running core functions take one, call ``report``
and ``check`` between units of work, and never know whether a terminal, a test or a Qt
worker is listening. It is thread-safe: the GUI thread may cancel, pause or queue actions
while a worker thread runs the task.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from core.errors import TransferLabError


class Cancelled(TransferLabError):
    """The user cancelled the task."""


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # e.g. "Decoding images", "Downloading CIFAR-10"
    done: int
    total: int  # 0 when unknown


class TaskState:
    def __init__(self, on_progress: Callable[[ProgressEvent], None] | None = None):
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._actions: list[Callable[[], None]] = []
        self.on_progress = on_progress

    # --- asked from any thread -------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused task must wake up to notice the stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def queue(self, action: Callable[[], None]) -> None:
        """Run ``action`` in the task's thread at its next ``check`` (e.g. a freeze toggle)."""
        with self._lock:
            self._actions.append(action)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # --- called by the task ------------------------------------------------------------
    def report(self, stage: str, done: int, total: int) -> None:
        if self.on_progress:
            self.on_progress(ProgressEvent(stage, done, total))

    def check(self) -> bool:
        """Between units of work: wait while paused, run queued actions, raise if cancelled.
        Returns whether any queued action ran (the caller may need to refresh state)."""
        self._running.wait()
        with self._lock:
            actions, self._actions = self._actions, []
        for action in actions:
            action()
        if self._cancel.is_set():
            raise Cancelled("Cancelled.")
        return bool(actions)

    def wait_if_paused(self) -> None:
        """Wait while paused, and never raise: for the moment after the last unit of work
        (a Pause asked for then holds; a Stop then changes nothing, the work is done)."""
        self._running.wait()

    def download_progress(self, stage: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for ``core.download`` that also honours cancel."""
        def progress(done: int, total: int) -> None:
            self.report(stage, done, total)
            if self._cancel.is_set():
                raise Cancelled("Cancelled.")
        return progress

"""The one place core/ touches Qt: workers that run core tasks in a QThread.

Engine events (plain dataclasses) become Qt signals, delivered queued into the GUI thread.
Batch events are throttled to at most ~20 a second so a fast loop cannot flood the event
queue. Stop and pause go through the TaskState and act between batches; there is no
``QThread.terminate()``.
"""
from __future__ import annotations

import time
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core import events as ev
from core.errors import TransferLabError
from core.progress import ProgressEvent, TaskState

BATCH_INTERVAL_S = 0.05


class _SignalCallback(ev.Callback):
    def __init__(self, worker: "TrainingWorker"):
        self.worker = worker
        self._last_batch = 0.0

    def on_event(self, event) -> None:
        w = self.worker
        if isinstance(event, ev.BatchEnd):
            now = time.monotonic()
            if now - self._last_batch < BATCH_INTERVAL_S and event.batch != event.batches:
                return
            self._last_batch = now
            w.batchEnd.emit(event)
        elif isinstance(event, ev.EpochEnd):
            w.epochEnd.emit(event)
        elif isinstance(event, ev.PhaseChanged):
            w.phaseChanged.emit(event)
        elif isinstance(event, ev.RunStarted):
            w.runStarted.emit(event)
        elif isinstance(event, ev.LogLine):
            w.log.emit(event.message)


class TaskWorker(QObject):
    """Runs ``fn(state)`` in its own QThread; ``done`` carries the result, ``failed`` a
    message (a TransferLabError's text, or a bug's last traceback line)."""

    progress = Signal(object)  # ProgressEvent
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[TaskState], object]):
        super().__init__()
        self.fn = fn
        self._progress_last = 0.0
        self.state = TaskState(on_progress=self._on_progress)
        self.thread = QThread()
        self.thread.setObjectName(type(self).__name__)
        self.moveToThread(self.thread)
        self.thread.started.connect(self.run)

    def _on_progress(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if now - self._progress_last >= BATCH_INTERVAL_S or event.done == event.total:
            self._progress_last = now
            self.progress.emit(event)

    def start(self) -> None:
        self.thread.start()

    @Slot()
    def run(self) -> None:
        try:
            self.done.emit(self.fn(self.state))
        except TransferLabError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must reach a dialog, not kill the app
            traceback.print_exc()
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.thread.quit()

    def stop(self, wait_ms: int = -1) -> bool:
        """Ask the task to stop and wait for the thread; True once it has ended."""
        self.state.cancel()
        if not self.thread.isRunning():
            return True
        return self.thread.wait() if wait_ms < 0 else self.thread.wait(wait_ms)


class PartialTaskWorker(TaskWorker):
    """A TaskWorker whose task also hands over partial results as it goes (``partial``)."""

    partial = Signal(object)


class TrainingWorker(TaskWorker):
    """Runs ``core.training.trainer.Trainer.fit`` and re-emits its events as signals."""

    runStarted = Signal(object)
    batchEnd = Signal(object)
    epochEnd = Signal(object)
    phaseChanged = Signal(object)
    log = Signal(str)

    def __init__(self, config, run_dir=None, resume: bool = False):
        super().__init__(self._fit)
        self.config, self.run_dir, self.resume = config, run_dir, resume
        self.trainer = None

    def _fit(self, state: TaskState):
        from core.training.trainer import Trainer

        self.trainer = Trainer(self.config, [_SignalCallback(self)], state, self.run_dir,
                               self.resume)
        return self.trainer.fit()

    def pause(self) -> None:
        self.state.pause()

    def resume_training(self) -> None:
        self.state.resume()

    def apply_freeze(self, spec: str) -> None:
        """Queued: make exactly ``spec`` frozen at the next batch boundary."""
        def apply():
            if self.trainer is not None and self.trainer.tree is not None:
                self.trainer.set_freeze(spec=spec)
        self.state.queue(apply)

    def set_trainable(self, path: str, trainable: bool) -> None:
        """Queued: the trainer applies it at the next batch boundary, in its own thread."""
        def apply():
            if self.trainer is not None and self.trainer.tree is not None:
                self.trainer.set_freeze(path=path, trainable=trainable)
        self.state.queue(apply)

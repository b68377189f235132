"""The one place core/ touches Qt: workers that run core tasks in a QThread.

Engine events (plain dataclasses) become Qt signals. Batch events are throttled to at most
~20 a second so a fast loop cannot flood the event queue. Stop and pause go through the
TaskState and act between batches; there is no ``QThread.terminate()``.

Cancel and detach (Orange's way): ``stop()`` never waits. It cancels the task and detaches
the worker: from then on none of its signals reach a receiver, so a stale result (an old
Grad-CAM, a scan of the previous folder, the tree of the previous network) can never land
on screen. Every signal is relayed through the GUI thread, where ``stop()`` is called, which
is what makes that guarantee race-free; it also means receivers, lambdas included, always
run in the GUI thread. The thread finishes on its own; a module-level registry keeps each
started worker alive until its thread's ``finished`` arrives (a QThread destroyed while it
runs aborts the process). Only ``shutdown_all`` waits, once, bounded, at application exit.
"""
from __future__ import annotations

import atexit
import time
import traceback
from typing import Callable

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QObject, QThread, Signal, Slot

from core import events as ev
from core.errors import TransferLabError
from core.progress import ProgressEvent, TaskState

BATCH_INTERVAL_S = 0.05
EXIT_WAIT_MS = 15_000  # at exit: time for the batch in flight to end (stop is between batches)

_live: set["TaskWorker"] = set()  # started and not yet finished (detached ones included)


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
            w.post("batchEnd", event)
        elif isinstance(event, ev.EpochEnd):
            w.post("epochEnd", event)
        elif isinstance(event, ev.PhaseChanged):
            w.post("phaseChanged", event)
        elif isinstance(event, ev.RunStarted):
            w.post("runStarted", event)
        elif isinstance(event, ev.LogLine):
            w.post("log", event.message)
        elif isinstance(event, ev.RecipeFitted):
            w.post("recipeFitted", event)


class _Runner(QObject):
    """Lives in the worker thread: runs the task and posts (signal name, payload) pairs."""

    event = Signal(str, object)

    def __init__(self, fn: Callable[[], None]):
        super().__init__()
        self.fn = fn

    @Slot()
    def run(self) -> None:
        try:
            self.fn()
        finally:
            QThread.currentThread().quit()
            app = QCoreApplication.instance()
            if app is not None:  # hand it back, so deleteLater runs in the GUI thread
                self.moveToThread(app.thread())


class TaskWorker(QObject):
    """Runs ``fn(state)`` in its own QThread; ``done`` carries the result, ``failed`` a
    message (a TransferLabError's text, or a bug's last traceback line).

    Create and stop it in the GUI thread. Its signals are emitted there, never after
    ``stop()``."""

    progress = Signal(object)  # ProgressEvent
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[TaskState], object]):
        super().__init__()
        self.fn = fn
        self.detached = False
        self._progress_last = 0.0
        self.state = TaskState(on_progress=self._on_progress)
        self.thread = QThread()
        self.thread.setObjectName(type(self).__name__)
        self._runner = _Runner(self._run)
        self._runner.moveToThread(self.thread)
        self._runner.event.connect(self._relay)  # queued: this object lives in the GUI thread
        self.thread.started.connect(self._runner.run)
        self.thread.finished.connect(self._thread_finished)

    # --- worker thread -------------------------------------------------------------------
    def post(self, name: str, payload=None) -> None:
        """From the task's thread: emit signal ``name`` in the GUI thread, unless detached."""
        self._runner.event.emit(name, payload)

    def _on_progress(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if now - self._progress_last >= BATCH_INTERVAL_S or event.done == event.total:
            self._progress_last = now
            self.post("progress", event)

    def _run(self) -> None:
        try:
            self.post("done", self.fn(self.state))
        except TransferLabError as exc:
            self.post("failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must reach a dialog, not kill the app
            traceback.print_exc()
            self.post("failed", f"Unexpected error: {type(exc).__name__}: {exc}")

    # --- GUI thread ----------------------------------------------------------------------
    @Slot(str, object)
    def _relay(self, name: str, payload) -> None:
        if not self.detached:
            getattr(self, name).emit(payload)

    @Slot()
    def _thread_finished(self) -> None:
        _live.discard(self)
        self._runner.deleteLater()

    def start(self) -> None:
        _live.add(self)
        self.thread.start()

    def stop(self) -> None:
        """Cancel and detach: ask the task to stop (it does so at its next check) and drop
        whatever it still sends. Returns at once; the thread ends on its own."""
        self.state.cancel()
        self.detached = True


def live_workers() -> list[TaskWorker]:
    """Workers whose threads have not reported ``finished`` yet."""
    return list(_live)


def shutdown_all(timeout_ms: int = EXIT_WAIT_MS) -> bool:
    """At application exit only: cancel every worker and wait, bounded, for their threads.
    True when all have ended."""
    workers = list(_live)
    for w in workers:
        w.stop()
    deadline = QDeadlineTimer(timeout_ms)
    ended = all(w.thread.wait(deadline) for w in workers)
    for w in workers:
        if w.thread.isFinished():
            _live.discard(w)
    return ended


atexit.register(shutdown_all)  # a script that never closed its window still exits cleanly


class PartialTaskWorker(TaskWorker):
    """A TaskWorker whose task also hands over partial results as it goes (``partial``)."""

    partial = Signal(object)

    def emit_partial(self, payload) -> None:
        """From the task's thread: hand over a partial result (dropped once detached)."""
        self.post("partial", payload)


class TrainingWorker(TaskWorker):
    """Runs ``core.training.trainer.Trainer.fit`` and re-emits its events as signals."""

    runStarted = Signal(object)
    batchEnd = Signal(object)
    epochEnd = Signal(object)
    phaseChanged = Signal(object)
    recipeFitted = Signal(object)
    log = Signal(str)

    def __init__(self, config, run_dir=None, resume: bool = False,
                 keep: frozenset[str] = frozenset()):
        super().__init__(self._fit)
        self.config, self.run_dir, self.resume = config, run_dir, resume
        self.keep = frozenset(keep)  # settings fitting to the data leaves as given (Trainer)
        self.trainer = None

    def _fit(self, state: TaskState):
        from core.training.trainer import Trainer

        self.trainer = Trainer(self.config, [_SignalCallback(self)], state, self.run_dir,
                               self.resume, keep=self.keep)
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

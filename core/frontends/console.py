"""Terminal output for training: the lesson's log lines plus a one-line progress bar."""
from __future__ import annotations

import sys
import time

from core import events as ev
from core.events import Callback
from core.runs.layout import RunPaths


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


ETA_UNTIL = {ev.ETA_CACHE: "for this epoch (the next ones run faster: features cached)",
             ev.ETA_UNFREEZE: "until the backbone unfreezes (then slower)"}


def eta_text(event) -> str:
    """``ETA 02:10`` for the whole run, or how far a phase's estimate reaches (BatchEnd)."""
    text = f"ETA {format_duration(event.eta_s)}"
    scope = getattr(event, "eta_scope", ev.ETA_RUN)
    return f"{text} {ETA_UNTIL[scope]}" if scope in ETA_UNTIL else text


class ConsoleReporter(Callback):
    """Log lines go to stdout; the bar (redrawn at most 10x/s) to stderr when it is a tty."""

    def __init__(self, out=None, err=None):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.tty = self.err.isatty()
        self._last = 0.0
        self._bar_shown = False
        self.n_val = 0  # validation images (RunStarted): how uncertain the accuracy is

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.err.write("\r\x1b[2K")
            self._bar_shown = False

    def on_log_line(self, event) -> None:
        self._clear_bar()
        print(event.message, file=self.out, flush=True)

    def on_run_started(self, event) -> None:
        self.n_val = event.n_val
        self._clear_bar()
        print(f"Run folder: {event.run_dir}", file=self.out, flush=True)

    def on_batch_end(self, event) -> None:
        now = time.monotonic()
        if not self.tty or (now - self._last < 0.1 and event.batch != event.batches):
            return
        self._last = now
        width = 30
        filled = int(width * event.batch / event.batches)
        self.err.write(f"\rEpoch {event.epoch}/{event.epochs} [{'#' * filled}{'.' * (width - filled)}] "
                       f"{event.batch}/{event.batches} loss {event.loss:.4f} "
                       f"{event.images_per_s:.0f} img/s {eta_text(event)}")
        self.err.flush()
        self._bar_shown = True

    def on_progress(self, event) -> None:
        if not self.tty:
            return
        total = f"/{event.total}" if event.total else ""
        self.err.write(f"\r\x1b[2K{event.stage}: {event.done}{total}")
        self.err.flush()
        self._bar_shown = True

    def on_fit_end(self, event) -> None:
        self._clear_bar()
        best = ""
        if event.best_val_acc is not None:
            from core.uncertainty import AccuracyInterval

            interval = AccuracyInterval.from_percent(event.best_val_acc, self.n_val)
            best = (f", best val acc {event.best_val_acc:.2f}% ± {interval.plus_minus:.1f} "
                    f"(95% interval, {self.n_val} images)" if self.n_val else
                    f", best val acc {event.best_val_acc:.2f}%")
        line = f"Training {event.status} after {event.epochs_done} epoch(s){best}. " \
               f"Model: {RunPaths(event.run_dir).model}"
        if event.message:
            line += f"\n{event.message}"
        print(line, file=self.out if event.status != "failed" else self.err, flush=True)

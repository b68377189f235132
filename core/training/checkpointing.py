"""Saving as a callback: config.json (and the split record) at the start, then after every
epoch the metrics, a checkpoint to resume from and (when validation improved) model.pt.

On resume it is the first callback: it reads the checkpoint (core.runs.checkpoint), gives the
loop its own state back through ``FitLoop.restore`` and every callback its saved state
through ``load_state_dict`` (itself included: the best score so far and when the run
started). Only rank 0 writes, through core.runs.store; every rank reads the checkpoint.
"""
from __future__ import annotations

import time

from core.errors import TransferLabError
from core.models.model_file import model_payload
from core.runs.checkpoint import checkpoint_payload
from core.runs.files import read_batches, read_status
from core.runs.resume import check_epochs
from core.runs.split import to_record
from core.runs.store import RunStore
from core.training.callbacks import TrainingCallback
from core.training.freezing import FreezeSchedule
from core.version import stamp


class Checkpointing(TrainingCallback):
    def __init__(self, store: RunStore, resume: bool = False, averaging=None):
        self.store, self.resume = store, resume
        self.averaging = averaging  # a WeightAveraging callback: the checkpoint's raw weights
        self.started = time.time()
        self.best_val_acc = -1.0  # model.pt is replaced only by a better score
        self.recorded = False  # status.json written by this fit (a failed resume leaves it)

    def state_dict(self) -> dict:
        return {"best_val_acc": self.best_val_acc, "started": self.started}

    def load_state_dict(self, state: dict) -> None:
        self.best_val_acc = float(state.get("best_val_acc", -1.0))
        started = state.get("started") or (read_status(self.store.dir) or {}).get("started")
        self.started = started if isinstance(started, (int, float)) else self.started

    def on_fit_start(self, loop) -> None:
        if self.resume:  # (RunStore removed what a killed save left behind)
            self._restore(loop)
        if loop.rt.dist.is_main:
            self.store.write_config(stamp(loop.cfg.to_dict()))
            assignment = getattr(loop.data, "assignment", None)  # (runs before split.json
            if assignment is not None and not (self.resume and self.store.paths.split.exists()):
                self.store.write_split(to_record(assignment, loop.cfg.data))  # get one now)
            self._status(loop, "running")

    def _status(self, loop, status: str, message: str = "") -> None:
        """status.json: what the runs list shows (core.runs.files.read_status)."""
        if loop.rt.dist.is_main and self.store.dir.is_dir():
            self.store.write_status(status, len(loop.history), message, self.started)
            self.recorded = True

    def on_fit_done(self, loop, event) -> None:
        if self.recorded:
            self._status(loop, event.status, event.message)

    def on_exception(self, loop, exc: BaseException) -> None:
        if not self.recorded:
            return
        try:
            self._status(loop, "failed", str(exc).splitlines()[0] if str(exc) else
                         type(exc).__name__)
        except TransferLabError:
            pass  # (a full disk): the original error is the one to report

    def on_validation_end(self, loop, event) -> None:
        if not loop.rt.dist.is_main:
            return
        cfg, pre = loop.cfg.to_dict(), loop.net.preprocessing.to_dict()
        if event.val_acc > self.best_val_acc:
            self.store.save_model(model_payload(
                loop.cfg.model, loop.model, loop.data.classes, pre, cfg,
                {"val_acc": event.val_acc, "epoch": event.epoch}))
            self.best_val_acc = event.val_acc
        history = loop.history
        states = {cb.state_key: cb.state_dict() for cb in loop.callbacks
                  if isinstance(cb, TrainingCallback)}
        self.store.save_checkpoint(checkpoint_payload(
            epoch=loop.epoch, config=cfg, classes=loop.data.classes, preprocessing=pre,
            history=history, optimizer=loop.opt.state_dict(),
            state_dict={k: v.detach().cpu() for k, v in self._raw_state(loop).items()},
            callbacks={k: v for k, v in states.items() if v}))
        self.store.write_metrics(history, loop.batch_log)
        self._status(loop, "running")
        for cb in loop.callbacks:  # every start, resume, schedule and user change
            if isinstance(cb, FreezeSchedule):
                self.store.write_freeze_changes(cb.changes)

    def _raw_state(self, loop) -> dict:
        """The trained weights (model.pt gets the weight average, when there is one)."""
        return self.averaging.raw_state_dict(loop.model) if self.averaging \
            else loop.model.state_dict()

    def _restore(self, loop) -> None:
        ck = self.store.load_checkpoint(loop.cfg.model, loop.data.classes)
        done = ck["epoch"] + 1
        check_epochs(loop.cfg, done, str(self.store.dir))
        loop.restore(done, ck["history"],
                     [b for b in read_batches(self.store.dir) if b["epoch"] <= done],
                     ck["state_dict"], ck["optimizer"])
        states = ck["callbacks"]
        for cb in loop.callbacks:
            if isinstance(cb, TrainingCallback) and cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
        loop.log(f"Resuming {self.store.dir} after epoch {done}")

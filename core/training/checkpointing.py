"""Saving as a callback: config.json at the start, then after every epoch the metrics, a
checkpoint to resume from and (when validation improved) model.pt. On ``--resume`` it
restores the loop from the checkpoint before the first epoch. Only rank 0 writes; every
rank reads the checkpoint."""
from __future__ import annotations

import json
import time
from pathlib import Path

from core import events as ev
from core.errors import TransferLabError
from core.models.model_file import model_payload
from core.paths import write_text_atomic
from core.training.callbacks import TrainingCallback
from core.training.run_folder import RunStore, read_batches, read_status, write_status
from core.version import stamp

CHECKPOINT_VERSION = 2
FREEZE_CHANGES = "freeze_changes.json"  # every start, resume, schedule and user change


def read_freeze_changes(run_dir: str | Path) -> list[dict] | None:
    """A run's recorded freeze changes (``FreezeSchedule.changes``); None for runs without
    the file (older ones) or with a damaged one."""
    try:
        changes = json.loads((Path(run_dir) / FREEZE_CHANGES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return changes if isinstance(changes, list) else None


class Checkpointing(TrainingCallback):
    def __init__(self, store: RunStore, freeze=None, resume: bool = False):
        self.store, self.freeze, self.resume = store, freeze, resume
        self.started = time.time()
        self.recorded = False  # status.json written by this fit (a failed resume leaves it)

    def on_fit_start(self, loop) -> None:
        loop.run_dir = str(self.store.dir)
        if self.resume:  # (RunStore removed what a killed save left behind)
            self._restore(loop)
            self.started = (read_status(self.store.dir) or {}).get("started", self.started)
        if loop.rt.dist.is_main:
            self.store.write_config(stamp(loop.cfg.to_dict()))
            self._status(loop, "running")

    def _status(self, loop, status: str, message: str = "") -> None:
        """status.json: what the runs list shows (core.training.run_folder.read_status)."""
        if loop.rt.dist.is_main and self.store.dir.is_dir():
            write_status(self.store.dir, status, len(loop.history), message, self.started)
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
        best = max((h["val_acc"] for h in loop.history[:-1]), default=-1.0)
        if event.val_acc > best:
            self.store.save_model(model_payload(
                loop.cfg.model, loop.model, loop.data.classes, pre, cfg,
                {"val_acc": event.val_acc, "epoch": event.epoch}))
        self.store.save_checkpoint({
            "version": CHECKPOINT_VERSION, "epoch": loop.epoch, "config": cfg,
            "classes": list(loop.data.classes), "preprocessing": pre,
            "history": loop.history, "freeze": loop.net.tree.frozen_spec(),
            "freeze_changes": self.freeze.changes if self.freeze else [],
            "state_dict": {k: v.detach().cpu() for k, v in self._raw_state(loop).items()},
            "optimizer": loop.opt.state_dict(),
            **({"averaging": loop.averaging.state_dict()} if loop.averaging else {})})
        self.store.write_metrics(loop.history, loop.batch_log)
        self._status(loop, "running")
        if self.freeze is not None:
            write_text_atomic(self.store.dir / FREEZE_CHANGES,
                              json.dumps(self.freeze.changes, indent=2) + "\n")

    @staticmethod
    def _raw_state(loop) -> dict:
        """The trained weights (model.pt gets the weight average, when there is one)."""
        return loop.averaging.raw_state_dict(loop.model) if loop.averaging \
            else loop.model.state_dict()

    def _restore(self, loop) -> None:
        ck = self.store.load_checkpoint()
        if ck.get("version", 1) > CHECKPOINT_VERSION:
            raise TransferLabError(f"{self.store.checkpoint_path} was written by a newer "
                                   f"TransferLab (checkpoint format {ck['version']}).")
        if ck["config"]["model"] != loop.cfg.model:
            raise TransferLabError(f"{self.store.dir} holds a {ck['config']['model']} run, "
                                   f"not {loop.cfg.model}.")
        if list(ck["classes"]) != list(loop.data.classes):
            raise TransferLabError(f"The data's classes differ from the run's: {ck['classes']}")
        loop.model.load_state_dict(ck["state_dict"])
        loop.restored_averaging = ck.get("averaging")  # (WeightAveraging picks it up)
        loop.epoch = loop.start_epoch = ck["epoch"] + 1
        if self.freeze is not None:
            self.freeze.load_state_dict({"changes": ck.get("freeze_changes", [])})
            self.freeze.apply(spec=ck["freeze"], reason=ev.RESUME, message="Resume")
        else:
            loop.net.tree.apply_spec(ck["freeze"], loop.net.head, loop.cfg.model)
            loop.trainable_changed(ev.RESUME, "Resume")
        loop.opt.load_state_dict(ck["optimizer"])
        loop.history = list(ck["history"])
        loop.batch_log = [b for b in read_batches(self.store.dir)
                          if b["epoch"] <= ck["epoch"] + 1]
        loop.log(f"Resuming {self.store.dir} after epoch {ck['epoch'] + 1}")

"""Hooks that see the loop, Lightning-style: the freeze schedule and checkpointing are such
callbacks, so the loop itself knows nothing of either. Plain observers (the console, the Qt
worker, tests) only need ``core.events.Callback``'s event hooks."""
from __future__ import annotations

from core.events import Callback


class TrainingCallback(Callback):
    """Every hook is a no-op by default; ``loop`` is the running ``FitLoop``."""

    def on_fit_start(self, loop) -> None: ...  # before the first epoch (resume restores here)
    def on_epoch_start(self, loop, epoch: int) -> None: ...  # 0-based, before its batches
    def on_train_batch_end(self, loop, epoch: int, batch: int) -> None: ...  # every rank
    def on_validation_start(self, loop) -> None: ...  # after an epoch's batches
    def on_validation_end(self, loop, event) -> None: ...  # EpochEnd, before observers hear it
    def on_fit_done(self, loop, event) -> None: ...  # FitEnd, before observers hear it
    def on_exception(self, loop, exc: BaseException) -> None: ...  # fit ends by raising exc

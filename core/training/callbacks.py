"""Hooks that see the loop, Lightning-style: the freeze schedule and checkpointing are such
callbacks, so the loop itself knows nothing of either. Plain observers (the console, the Qt
worker, tests) only need ``core.events.Callback``'s event hooks."""
from __future__ import annotations

from core.events import Callback


class TrainingCallback(Callback):
    """Every hook is a no-op by default; ``loop`` is the running ``FitLoop``.

    A callback keeps its own state (Lightning's way): ``state_dict()`` is saved under
    ``state_key`` in the checkpoint; on resume, Checkpointing (the first callback) hands each
    one its state through ``load_state_dict`` in its ``on_fit_start``, and the callback acts
    on it in its own ``on_fit_start``, which comes after. The loop's own state (epochs,
    history, weights, optimizer) is restored through ``FitLoop.restore``."""

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def state_dict(self) -> dict:
        return {}  # (nothing to save: left out of the checkpoint)

    def load_state_dict(self, state: dict) -> None: ...

    def on_fit_start(self, loop) -> None: ...  # before the first epoch (after a restore)
    def on_epoch_start(self, loop, epoch: int) -> None: ...  # 0-based, before its batches
    def on_train_batch_end(self, loop, epoch: int, batch: int) -> None: ...  # every rank
    def on_validation_start(self, loop) -> None: ...  # after an epoch's batches
    def on_validation_end(self, loop, event) -> None: ...  # EpochEnd, before observers hear it
    def on_fit_done(self, loop, event) -> None: ...  # FitEnd, before observers hear it
    def on_exception(self, loop, exc: BaseException) -> None: ...  # fit ends by raising exc

"""Plain-data events the trainer emits, and the no-op callback base observers extend.

Events are frozen dataclasses of numbers and strings only, so they cross threads (and Qt
signals) safely; the training loop never knows who listens (Lightning's callback idea).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    model: str
    classes: list[str]
    n_train: int
    n_val: int
    epochs: int
    start_epoch: int  # > 0 when resuming
    batches_per_epoch: int
    frozen_summary: str
    data_description: str


@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based
    batches: int
    loss: float
    lr: float
    images_per_s: float
    eta_s: float  # time left, at the measured speed of the current phase, up to eta_scope's end
    eta_scope: str = "run"  # ETA_RUN, ETA_CACHE or ETA_UNFREEZE (core.training.eta)


# How far BatchEnd.eta_s reaches: to the end of the run, or only to the end of the epoch that
# fills the frozen-feature cache (the next ones run much faster), or to the scheduled unfreeze
# (the next ones run slower): their speed is measured once they start.
ETA_RUN, ETA_CACHE, ETA_UNFREEZE = "run", "cache", "unfreeze"


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    phase: str  # "frozen" or "unfrozen"
    train_loss: float
    train_acc: float  # percent
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float


# Why the trainable set changed (PhaseChanged.reason): consumers pick chart markers and
# wording from this field, never from the message text.
START, RESUME, SCHEDULE, USER = "start", "resume", "schedule", "user"


@dataclass(frozen=True)
class PhaseChanged:
    """The trainable set changed: the run started or resumed, the schedule unfroze the
    backbone, or the user toggled a layer or applied a preset."""
    epoch: int
    batch: int
    phase: str
    frozen_summary: str
    frozen_spec: str
    message: str
    reason: str = USER  # START, RESUME, SCHEDULE or USER


@dataclass(frozen=True)
class RecipeFitted:
    """The preset's settings were fitted to the data before training (core.recipe):
    ``changes`` are (TrainConfig key, value before, value now in use), ``reasons`` the reason
    of each (keys of core.recipe.REASONS); ``reason`` is the decision's. ``trial``: what the
    trial of the candidates measured (a core.recipe.TrialResult), when one decided."""
    changes: tuple[tuple[str, object, object], ...]
    reason: str
    message: str
    reasons: tuple[str, ...] = ()
    trial: object = None


@dataclass(frozen=True)
class LogLine:
    message: str


@dataclass(frozen=True)
class FitEnd:
    status: str  # "finished", "stopped" or "failed"
    epochs_done: int
    best_val_acc: float | None
    run_dir: str
    message: str = ""
    history: list[dict] = field(default_factory=list)


def epoch_line(epoch: int, train_loss: float, train_acc: float, val_acc: float) -> str:
    """The lesson's per-epoch line, so its output and ours compare at a glance. The lesson
    called the held-out accuracy "Test Acc"; here it is the validation set's, as the charts
    say, so the line says "Val Acc"."""
    return (f"Epoch {epoch} End | Train Loss: {train_loss:.4f} | Train Acc: {train_acc:.2f}% | "
            f"Val Acc: {val_acc:.2f}%")


def hook_name(event) -> str:
    """``BatchEnd`` -> ``on_batch_end``."""
    return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


class Callback:
    """Override the hooks you need; every hook is a no-op by default."""

    def on_run_started(self, event: RunStarted) -> None: ...
    def on_batch_end(self, event: BatchEnd) -> None: ...
    def on_epoch_end(self, event: EpochEnd) -> None: ...
    def on_phase_changed(self, event: PhaseChanged) -> None: ...
    def on_log_line(self, event: LogLine) -> None: ...
    def on_recipe_fitted(self, event: RecipeFitted) -> None: ...
    def on_fit_end(self, event: FitEnd) -> None: ...

    def on_event(self, event) -> None:
        getattr(self, hook_name(event))(event)


class EventCollector(Callback):
    """Keeps every event; handy for tests and for replaying a run."""

    def __init__(self):
        self.events = []

    def on_event(self, event) -> None:
        self.events.append(event)

    def of(self, cls) -> list:
        return [e for e in self.events if isinstance(e, cls)]

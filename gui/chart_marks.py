"""Where a freeze change is marked on the charts (no pyqtgraph here: the Train tab uses it
before the charts, which import pyqtgraph, exist)."""
from __future__ import annotations


def change_marker(reason: str, epoch: int, batch: int,
                  batches_per_epoch: int | None) -> tuple[float, str] | None:
    """Where (x in epochs) and how a freeze change is marked; None for the run's own start
    and resume. ``epoch`` is 1-based, ``batch`` the batches done in it."""
    from core.events import RESUME, SCHEDULE, START

    if reason in (START, RESUME) or (epoch <= 1 and batch == 0):
        return None
    x = epoch - 1 + (batch / batches_per_epoch if batches_per_epoch else 0)
    return x, "unfrozen" if reason == SCHEDULE else "layers changed"

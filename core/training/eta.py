"""Time left in a run, from the measured speed of the phase it is in.

Epochs of one run do not run at one speed: the first epoch of a run that caches its frozen
layers computes them (later epochs skip them and run 10-100x faster), and an epoch after the
backbone unfreezes runs slower than a frozen one. An average over the whole run was minutes
off in every phase (06:17 shown with 8 s left). So the clock measures the current phase
alone, restarting when the phase changes (a scheduled unfreeze, a user's freeze change, the
first epoch after the cache is filled), and it says how far its estimate reaches: to the end
of the run, or to the end of the phase when the next one will run at another, not yet
measured, speed (``events.ETA_*`` in ``BatchEnd.eta_scope``).
"""
from __future__ import annotations

from core import events as ev

WARM_UP = 1  # a phase's first batches are slower (allocations, lazy set-up): rate after them


class EtaClock:
    def __init__(self):
        self._fills_cache = False  # whether the phase measured fills the prefix cache
        self.restart()

    def restart(self) -> None:
        """A new phase: forget the rate measured so far."""
        self._t0: float | None = None
        self._batches = 0

    def batch_done(self, now: float, batch_seconds: float, epoch: int, batch: int,
                   batches: int, epochs: int, fills_cache: bool, unfrozen_at,
                   later_batches: int | None = None) -> tuple[float, str]:
        """(seconds left, events.ETA_* scope) after 0-based ``batch`` of ``batches`` in
        0-based ``epoch``; the epoch that fills the frozen-prefix cache (``fills_cache``)
        is a phase of its own, so the clock restarts when that changes. ``later_batches``:
        how many batches each later epoch has (default ``batches``; fewer when later epochs
        leave learned images out, core.training.sampling)."""
        if fills_cache != self._fills_cache:
            self._fills_cache = fills_cache
            self.restart()
        end, scope = phase_end(epoch, epochs, fills_cache, unfrozen_at)
        later = batches if later_batches is None else later_batches
        left = batches - (batch + 1) + (end - epoch - 1) * later
        return self.seconds_left(now, batch_seconds, left), scope

    def seconds_left(self, now: float, batch_seconds: float, batches_left: int) -> float:
        """After a batch that ended at ``now`` (taking ``batch_seconds``): the time the
        ``batches_left`` still to come in this phase will take at the phase's rate."""
        self._batches += 1
        if self._batches <= WARM_UP or self._t0 is None:
            self._t0 = now
            per_batch = batch_seconds
        else:
            per_batch = (now - self._t0) / (self._batches - WARM_UP)
        return max(0, batches_left) * per_batch


def phase_end(epoch: int, epochs: int, fills_cache: bool, unfrozen_at) -> tuple[int, str]:
    """(0-based epoch the estimate reaches up to, exclusive; events.ETA_* scope) for a batch
    of 0-based ``epoch``. ``unfrozen_at(e)`` says whether epoch ``e`` trains everything."""
    if fills_cache and epoch + 1 < epochs:
        return epoch + 1, ev.ETA_CACHE
    for later in range(epoch + 1, epochs):
        if unfrozen_at(later) != unfrozen_at(epoch):
            return later, ev.ETA_UNFREEZE
    return epochs, ev.ETA_RUN

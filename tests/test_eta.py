"""Issue 24 item 6: the ETA comes from the measured speed of the current phase, and says how
far it reaches when a later phase will run at another speed."""
from __future__ import annotations

import pytest

from core import events as ev
from core.events import BatchEnd, EventCollector
from core.frontends.console import eta_text
from core.training.eta import EtaClock, phase_end
from tests.conftest import make_folder, tiny_config


def test_the_clock_forgets_a_slow_phase():
    clock = EtaClock()
    t = 0.0
    for _ in range(10):  # a slow phase: 2 s a batch
        t += 2.0
        clock.seconds_left(t, 2.0, 100)
    clock.restart()  # the next phase: 0.1 s a batch
    for _ in range(5):
        t += 0.1
        left = clock.seconds_left(t, 0.1, 40)
    assert left == pytest.approx(40 * 0.1)  # an average over both phases said ~40 * 0.7


def test_the_first_batch_of_a_phase_uses_its_own_time():
    clock = EtaClock()
    assert clock.seconds_left(5.0, 0.5, 10) == pytest.approx(5.0)


def test_how_far_an_estimate_reaches():
    unfreezes_at_2 = lambda e: e >= 2  # noqa: E731
    assert phase_end(0, 5, True, unfreezes_at_2) == (1, ev.ETA_CACHE)
    assert phase_end(1, 5, False, unfreezes_at_2) == (2, ev.ETA_UNFREEZE)
    assert phase_end(3, 5, False, unfreezes_at_2) == (5, ev.ETA_RUN)
    assert phase_end(0, 1, True, lambda e: False) == (1, ev.ETA_RUN)  # nothing after it


def test_a_cached_run_reports_each_phase(tmp_path):
    """Epoch 1 fills the frozen-feature cache, epoch 2 reuses it, epoch 3 is unfrozen: the
    estimate reaches the end of epoch 1, then the unfreeze, then the end of the run."""
    from core.training.trainer import Trainer

    folder = make_folder(tmp_path / "data", classes=2, per_class=12)
    cfg = tiny_config(folder, epochs=3, freeze_epochs=2, batch_size=6)
    events = EventCollector()
    result = Trainer(cfg, [events], run_dir=tmp_path / "run").fit()
    assert result.status == "finished"
    batches = events.of(BatchEnd)
    scopes = {e.epoch: {b.eta_scope for b in batches if b.epoch == e.epoch} for e in batches}
    assert scopes == {1: {ev.ETA_CACHE}, 2: {ev.ETA_UNFREEZE}, 3: {ev.ETA_RUN}}
    last_of = {b.epoch: b for b in batches}
    assert last_of[1].eta_s == 0 and last_of[2].eta_s == 0  # each phase's own end
    assert last_of[3].eta_s == 0
    assert "for this epoch" in eta_text(batches[0])
    assert eta_text(batches[-1]) == "ETA 00:00"


def test_the_clock_restarts_when_the_cache_filling_epoch_ends():
    clock = EtaClock()
    never = lambda e: False  # noqa: E731
    for b in range(4):  # the filling epoch: 10 s a batch, its estimate reaches its own end
        left, scope = clock.batch_done(10.0 * (b + 1), 10.0, 0, b, 4, 3, True, never)
    assert scope == ev.ETA_CACHE and left == 0
    t = 40.0
    for b in range(3):  # later epochs run at 1 s a batch: the slow rate is forgotten
        t += 1.0
        left, scope = clock.batch_done(t, 1.0, 1, b, 4, 3, False, never)
    assert scope == ev.ETA_RUN and left == pytest.approx((2 * 4 - 3) * 1.0)


def test_later_epochs_that_leave_images_out_are_counted_with_their_own_batches():
    """A run that skips learned images (core.training.sampling) has 10 batches in its first
    epoch and about 5 in each later one: after the first epoch's 4th batch at 1 s a batch,
    6 + 2 * 5 batches are left, not 6 + 2 * 10."""
    clock = EtaClock()
    never = lambda e: False  # noqa: E731
    for b in range(4):
        left, scope = clock.batch_done(float(b + 1), 1.0, 0, b, 10, 3, False, never, 5)
    assert scope == ev.ETA_RUN and left == pytest.approx(6 + 2 * 5)
    left, _ = EtaClock().batch_done(1.0, 1.0, 0, 3, 10, 3, False, never)  # none left out
    assert left == pytest.approx(6 + 2 * 10)

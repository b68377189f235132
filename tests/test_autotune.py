"""The speed choices (core.training.autotune, core.training.tuner): a rule that noise does not
flip, one answer per machine (cached) and per run (recorded, kept by a resume), choices that
reach the loop, and speed tricks that give the plain path's numbers. (How fast each choice is
on a CPU is bench/autotune.py's job, not a test's.)"""
from __future__ import annotations

import json
import random

import pytest
import torch

from core.events import EventCollector, LogLine
from core.runs.layout import DECISIONS_FILE
from core.training import autotune as at
from core.training.callbacks import TrainingCallback
from core.training.trainer import Trainer
from tests.conftest import tiny_config


def noisy_rounds(speeds: dict[str, float], rounds: int, rng: random.Random):
    """Timings as a busy shared machine gives them: each round slowed as a whole (up to 2x,
    a neighbour starting or stopping), each sample jittered by 10% and one in eight slowed
    1.5-3x (a preemption)."""
    out = {label: [] for label in speeds}
    for _ in range(rounds):
        drift = rng.uniform(1.0, 2.0)
        for label, seconds in speeds.items():
            t = seconds * drift * rng.lognormvariate(0, 0.10)
            if rng.random() < 1 / 8:
                t *= rng.uniform(1.5, 3.0)
            out[label].append(t)
    return out


def noisy_sampler(speeds: dict[str, float], rng: random.Random):
    """A stand-in for the stopwatch (autotune.interleaved): noisy timings as data."""
    return lambda runs, rounds, seed, warm: noisy_rounds(speeds, rounds, rng)


@pytest.mark.parametrize("speeds, expected, share", [
    ({"16": 1.0, "32": 0.97, "64": 1.03}, "16", 0.90),  # within the margin: the default stays
    ({"16": 1.0, "32": 0.70, "64": 0.80}, "32", 0.85),  # 30% faster, the runner-up 20%
    ({"32": 1.0, "bf16": 0.45}, "bf16", 0.99),  # bf16 training on AMX: 2.2x
])
def test_the_rule_gives_the_same_answer_under_noise(speeds, expected, share):
    """The same decision made 200 times over a busy machine's noise: (nearly) always the
    same answer, where picking the fastest single timing flips between candidates. (What
    makes a run's answer stable is that it is decided once per machine: the next test.)"""
    rng = random.Random(7)
    default = next(iter(speeds))
    answers, naive = [], []
    for _ in range(200):
        answers.append(at.timed_choice(default, dict.fromkeys(speeds),
                                       noisy_sampler(speeds, rng))[0])
        once = noisy_rounds(speeds, 1, rng)
        naive.append(min(once, key=lambda k: once[k][0]))
    assert answers.count(expected) >= share * 200
    assert naive.count(expected) < answers.count(expected)


def test_the_rule_says_why():
    label, why, _ = at.choose("16", {"16": [1.0, 1.1, 1.0], "32": [0.5, 0.6, 0.5]})
    assert label == "32" and why.startswith("32 2.00x faster than 16 (median of 3")
    label, why, _ = at.choose("16", {"16": [1.0, 1.0, 1.0], "32": [0.95, 0.95, 0.95]})
    assert label == "16" and "under the 10% margin" in why


@pytest.fixture
def always_time(monkeypatch):
    """Time even a seconds-long run (normally only runs that pay for it are timed)."""
    monkeypatch.setattr(at, "MIN_IMAGES", 0)
    monkeypatch.setattr(at, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(at, "COST_STEPS", 0)


def train(folder, run_dir, resume=False, **kw):
    events = EventCollector()
    kw.setdefault("batch_size", 16)  # (micro-batches of 8 and 16 are candidates)
    kw.setdefault("freeze_epochs", 5)  # frozen throughout: one workload, one set of choices
    cfg = tiny_config(folder, epochs=kw.pop("epochs", 1), **kw)
    trainer = Trainer(cfg, [events], run_dir=run_dir, resume=resume)
    assert trainer.fit().status == "finished"
    return trainer, [e.message for e in events.of(LogLine)]


def test_one_answer_per_machine_and_per_run(image_folder, tmp_path, always_time,
                                            isolated_home):
    first, log = train(image_folder, tmp_path / "a")
    decisions = first.runtime.decisions
    assert {"channels_last", "micro_batch", "train_precision"} <= set(decisions)
    assert all(set(d) == {"choice", "figures", "reason"} for d in decisions.values())
    assert decisions["micro_batch"]["figures"]  # the candidates' timings are kept
    assert any(m.startswith("Speed choices (timed now") for m in log)
    assert any(m.startswith("  micro_batch = ") and " s a batch]" in m for m in log)
    recorded = json.loads((tmp_path / "a" / DECISIONS_FILE).read_text())
    assert list(recorded.values()) == [decisions]
    def cached(d: dict) -> dict:  # threads are timed at each run's start (the load now)
        return {k: v for k, v in d.items() if k != "threads"}

    for name in ("b", "c"):  # later runs on this machine: the same answer, not re-timed
        again, log = train(image_folder, tmp_path / name)
        assert cached(again.runtime.decisions) == cached(decisions)
        assert any(m.startswith("Speed choices (cached for this machine)") for m in log)
    (isolated_home / "cache" / at.CACHE_FILE).unlink()  # a resume keeps what its run chose
    resumed, log = train(image_folder, tmp_path / "a", resume=True, epochs=2)
    assert resumed.runtime.decisions == decisions
    assert any(m.startswith("Speed choices (recorded in this run)") for m in log)


def test_short_runs_keep_the_defaults_without_timing(image_folder, tmp_path):
    trainer, log = train(image_folder, tmp_path / "r")
    d = trainer.runtime.decisions
    assert d["micro_batch"]["choice"] == 16 and d["train_precision"]["choice"] == "32"
    assert d["micro_batch"]["figures"] == {} and "short run" in d["micro_batch"]["reason"]
    assert trainer.runtime.precision.name == "32"
    assert any(m.startswith("Speed choices (not timed)") for m in log)


def test_decisions_reach_the_loop(image_folder, tmp_path):
    from core.training.tuner import apply_decisions

    trainer = Trainer(tiny_config(image_folder, precision="auto"), run_dir=tmp_path / "r")
    loop = trainer.prepare()
    apply_decisions(loop, {"channels_last": at.decision(False, "test"),
                           "micro_batch": at.decision(4, "test"),
                           "train_precision": at.decision("bf16", "test")}, "test")
    assert loop.chunks(8) == [slice(0, 4), slice(4, 8)]
    assert loop.rt.precision.name == "bf16" and not loop.rt.precision.forward_only
    x = loop.loaders()[0].inputs(torch.arange(2))
    assert x.is_contiguous() and not loop.model.features[0][0].weight.is_contiguous(
        memory_format=torch.channels_last)


def test_channels_last_trains_as_the_plain_layout_does(image_folder, tmp_path):
    """A speed choice changes speed only: the same run in either layout ends with the same
    parameters (float32 sums in another order)."""
    runs = [train(image_folder, tmp_path / str(cl), channels_last=cl, precision="32",
                  epochs=2)[0] for cl in (True, False)]
    a, b = (r.model.state_dict() for r in runs)
    for key in a:
        if a[key].is_floating_point():
            assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-5), key


class ThreadsSeen(TrainingCallback):
    """The threads decision in force during each epoch's first batch."""

    def __init__(self):
        self.by_epoch = {}

    def on_train_batch_end(self, loop, epoch, batch):
        if batch == 1:
            self.by_epoch[epoch] = (loop.rt.decisions.get("threads"), torch.get_num_threads())


def test_threads_are_timed_again_at_each_epoch(image_folder, tmp_path, always_time,
                                               isolated_home):
    """The load of a run's first seconds need not hold for the whole run (a start beside a
    passing job chose 1 thread for a 30-minute run): each epoch times the threads anew.
    (Two threads to choose from, also where the suite gives each worker one.)"""
    seen = ThreadsSeen()
    cfg = tiny_config(image_folder, epochs=3, freeze_epochs=5, batch_size=16)
    trainer = Trainer(cfg, [seen], run_dir=tmp_path / "r")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert trainer.fit().status == "finished"
    finally:
        torch.set_num_threads(before)
    decisions = [seen.by_epoch[e][0] for e in range(3)]
    assert all(d is not None and d["figures"] for d in decisions)
    assert decisions[0] is not decisions[1] and decisions[1] is not decisions[2]
    assert all(seen.by_epoch[e][1] == d["choice"] for e, d in enumerate(decisions))

"""A run's speed choices (core.training.autotune): looked up, or timed, then applied.

``AutoTuner.decide(loop)`` runs whenever what trains changes for the run's own reasons
(start, resume, the schedule's unfreeze; not a user's live toggle). For the workload at hand
it takes, in order: what this run recorded (a resume keeps its choices), what this machine
kind cached, or a fresh measurement; rank 0 decides and every rank applies the same. The
result is ``runtime.decisions`` (name -> choice, figures, reason), written to the run
folder's decisions.json by ``autotune.save_decisions``, and logged with its figures.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from core.training import autotune as at
from core.training.device import Precision


def make_tuner(cfg, rt, run_dir: str | Path | None, resume: bool):
    """The run's tuner (None off the CPU: a GPU's only choice, its precision, is a rule)."""
    if rt.device.type != "cpu":
        name = rt.precision.name
        why = f"--precision {cfg.precision}" if str(cfg.precision) != "auto" else \
            "auto: bf16, which this GPU computes in hardware" if name == "bf16" else \
            f"auto: {name} on this {rt.device.type} device (no bf16 in hardware)"
        rt.decisions = {"train_precision": at.decision(name, why)}
        return None
    free = at.Free(precision=str(cfg.precision) == "auto",
                   threads=cfg.threads is None and not rt.dist.enabled
                   and "OMP_NUM_THREADS" not in os.environ,
                   default_micro_batch=cfg.micro_batch, default_channels_last=cfg.channels_last,
                   default_threads=torch.get_num_threads())
    recorded = at.load_decisions(run_dir) if resume and run_dir else {}
    return AutoTuner(free, run_dir, rt.dist.is_main, recorded)


class AutoTuner:
    def __init__(self, free: at.Free, run_dir, writer: bool, recorded: dict):
        self.free, self.run_dir, self.writer = free, run_dir, writer
        self.recorded = dict(recorded)  # workload key -> decisions, as decisions.json holds
        self._threads_epoch: int | None = None  # the epoch whose start last timed threads

    def decide(self, loop) -> dict:
        loop.set_bn_modes()  # (what the epoch does first: decides whether BatchNorm trains)
        key = self._key(loop)
        found = self._find(loop, key) if loop.rt.dist.is_main else None
        decisions, source = loop.rt.dist.broadcast(found)
        if loop.caches is not None and "cache_cut" not in decisions:
            cut = loop.net.stage_list[loop.caches.k - 1].path or "pool"
            decisions = {**decisions, "cache_cut": at.decision(cut, at.CUT_REASON)}
        self.recorded[key] = decisions
        if self.writer and self.run_dir is not None:
            at.save_decisions(self.run_dir, self.recorded)
        apply_decisions(loop, decisions, source)
        loop.log(f"Speed choices ({source}): " + ", ".join(
            f"{name} {d['choice']}" for name, d in decisions.items()) +
            f"; precision {loop.rt.precision.describe()}")
        for name, d in decisions.items():
            figures = ", ".join(f"{k} {v:.3g} s" for k, v in d["figures"].items())
            loop.log(f"  {name} = {d['choice']}: {d['reason']}" +
                     (f" [{figures} a batch]" if figures else ""))
        return decisions

    def recheck_threads(self, loop) -> None:
        """At an epoch's start: the thread count timed again (it answers for the load of
        the moment, so a start under a passing load need not cost the whole run)."""
        if not self.free.threads or loop.epoch == self._threads_epoch or \
                _images_ahead(loop) < at.MIN_IMAGES:
            return
        self._threads_epoch = loop.epoch
        before = torch.get_num_threads()
        threads = at.measure_threads(workload(loop), self.free).get("threads")
        if threads is None:  # (one core: nothing to choose)
            return
        torch.set_num_threads(threads["choice"])
        loop.rt.decisions = {**(loop.rt.decisions or {}), "threads": threads}
        if threads["choice"] != before:
            loop.log(f"Threads {before} -> {threads['choice']}, timed again at the start of "
                     f"epoch {loop.epoch + 1}: {threads['reason']}")

    def _find(self, loop, key: str) -> tuple[dict, str]:
        """(decisions, where they came from): this run's record, else the machine's cache
        (threads timed now), else a measurement, else the defaults with the reason."""
        if key in self.recorded:
            return self.recorded[key], "recorded in this run"
        ahead = _images_ahead(loop)
        if ahead < at.MIN_IMAGES:  # (nothing to time, not even the threads)
            return self._defaults(f"a short run ({ahead} images to train on): the "
                                  f"defaults"), "not timed"
        work = workload(loop)
        threads = at.measure_threads(work, self.free)
        self._threads_epoch = loop.epoch
        if threads:
            torch.set_num_threads(threads["threads"]["choice"])
        entry = at.recall(key)
        if entry:
            return {**entry, **threads}, "cached for this machine"
        why = at.worth_timing(work, self.free)
        if why:
            return {**self._defaults(why), **threads}, "not timed"
        decisions = at.measure(work, self.free)
        at.remember(key, decisions)
        return {**decisions, **threads}, "timed now on this CPU, cached for the next run"

    def _defaults(self, why: str) -> dict:
        free = self.free
        out = {"channels_last": at.decision(free.default_channels_last, why),
               "micro_batch": at.decision(free.default_micro_batch, why)}
        if free.precision:
            out["train_precision"] = at.decision("32", why)
        return out

    @staticmethod
    def _key(loop) -> str:
        cfg = loop.cfg
        trainable = [n for n, p in loop.model.named_parameters() if p.requires_grad]
        cut = loop.caches.k if loop.caches is not None else 0
        return at.workload_key(cfg.model, cfg.image_size, _rank_batch(loop), cut, trainable,
                               loop._bn_trains, cfg.optimizer)


def _rank_batch(loop) -> int:
    return -(-loop.cfg.batch_size // loop.rt.dist.world)


def workload(loop) -> at.Workload:
    """One real batch of this run (its first training images) as what trains sees it."""
    from core.models.staging import StageStack

    n = min(_rank_batch(loop), len(loop.train_labels))
    train, _ = loop.loaders()
    idx = torch.arange(n)
    with torch.no_grad():
        images = train.inputs(idx)
        if loop.caches is not None:
            inputs = loop.caches.train._run_prefix(images).float()
            module = StageStack(loop.caches.tail)
        else:
            inputs, module = images, loop.model
    return at.Workload(module, inputs.detach(), train.targets(idx), loop.cfg.optimizer,
                       loop._bn_trains, _images_ahead(loop), loop.model, images,
                       stopping=lambda: loop.state.cancelled)


def _images_ahead(loop) -> int:
    """Images this process trains on in the epochs left (whether timing pays)."""
    return (loop.cfg.epochs - loop.epoch) * -(-len(loop.train_labels) // loop.rt.dist.world)


def apply_decisions(loop, decisions: dict, source: str) -> None:
    """Make the loop run as decided: layout, micro-batch, threads, precision."""
    choice = {name: d["choice"] for name, d in decisions.items()}
    loop.rt.decisions = decisions
    if "micro_batch" in choice:
        loop.micro_batch = int(choice["micro_batch"])
    if "channels_last" in choice:
        loop.set_layout(bool(choice["channels_last"]))
    if "threads" in choice:
        torch.set_num_threads(int(choice["threads"]))
    if "train_precision" in choice:
        dev, reason = loop.rt.device, f"auto: {source}"
        if choice["train_precision"] == "bf16":
            precision = Precision("bf16", dev, reason=reason)
        elif choice.get("eval_precision") == "bf16":
            precision = Precision("bf16", dev, forward_only=True, reason=reason)
        else:
            precision = Precision("32", dev, reason=reason)
        loop.rt.precision = precision  # (FitLoop._wrap keeps the strided depthwise in 32)

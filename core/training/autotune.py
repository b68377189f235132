"""The speed-only choices, timed on the machine at hand (CPU runs).

What is chosen, each from its candidates, for the part of the network that trains:

- ``train_precision``: float32 or bf16 autocast for the training step (CPUs with bf16
  units, under ``--precision auto``; the strided depthwise convolutions stay float32,
  core.training.device.strided_depthwise_in_fp32);
- ``eval_precision``: float32 or bf16 for the passes without gradients (filling the
  frozen-prefix cache, validation), when training stays float32;
- ``channels_last``: the memory layout of activations and weights;
- ``micro_batch``: images per forward/backward inside a batch (8, 16, 32 or the whole
  batch), while no BatchNorm layer trains (then it is one pass per batch);
- ``threads``: torch's default (one per core) or half of it, unless ``--threads`` is given
  or several processes share the machine; timed at each run's start (``measure_threads``:
  the answer depends on the machine's load at the time) and recorded, not cached;
- ``cache_cut``: not timed. The cache is cut after the deepest frozen stage: any earlier cut
  recomputes frozen layers every step and, in every offered network, stores more values.

How: a private copy of what trains runs real steps (real shapes: the run's own images
through the cached prefix) per candidate, candidates interleaved in shuffled order over
``ROUNDS`` rounds (a noisy neighbour slows a round's candidates alike), after one warm-up
each; a close call gets more rounds. A candidate replaces the default only when its median
time, relative to each round's median, is at least ``MARGIN`` below the default's
(``choose``). The result is cached per CPU kind and torch version
(``autotune.json`` in the TransferLab cache folder) and recorded in the run folder
(``decisions.json``), so the next run on this machine and a resume of this run choose the
same without timing. Short runs (under ``MIN_IMAGES`` images or ``MIN_SECONDS`` seconds of
training) keep the defaults: timing would cost more than it can save; so does a machine so
busy that timing would take over ``MAX_SECONDS``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import statistics
import time
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.progress import Cancelled
from core.runs.files import read_decisions, write_decisions
from core.training.device import cpu_bf16_units, strided_depthwise_in_fp32

MARGIN = 0.10  # a candidate must be this much faster than the default to replace it
ROUNDS = 5  # interleaved rounds of timing (plus one warm-up run per candidate)
FIRST_ROUNDS = 3  # after these, an OBVIOUS winner is taken without the rest
OBVIOUS = 2.0
EXTRA_ROUNDS = 4  # more rounds for a close call
MIN_IMAGES = 2000  # images in the phase ahead below which nothing is timed
MIN_SECONDS = 120.0  # estimated training time of the phase below which nothing is timed
MAX_SECONDS = 60.0  # the most the timing may take (and at most a tenth of the phase)
COST_STEPS = 40  # what timing every candidate costs, in default steps (about)
CACHE_FILE = "autotune.json"  # in core.paths.cache_dir(): per machine kind
CACHE_VERSION = 1


CUT_REASON = ("not timed: the deepest frozen stage, since an earlier cut recomputes frozen "
              "layers every step and stores more values an image")


def decision(choice, reason: str, figures: dict | None = None) -> dict:
    """One plain record: what was chosen, the candidates' figures, why."""
    return {"choice": choice, "figures": dict(figures or {}), "reason": reason}


# --- the rule -------------------------------------------------------------------------------
def scores(samples: dict[str, list[float]]) -> dict[str, float]:
    """Each candidate's median over rounds of its time relative to the round's median: a
    neighbour's load that slows a whole round cancels, and one disturbed sample (a
    preemption only ever slows) moves a median of five by little."""
    labels = list(samples)
    rel: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(len(samples[labels[0]])):
        mid = statistics.median(samples[label][r] for label in labels)
        for label in labels:
            rel[label].append(samples[label][r] / max(mid, 1e-12))
    return {label: statistics.median(v) for label, v in rel.items()}


def choose(default: str, samples: dict[str, list[float]], margin: float = MARGIN):
    """(label, reason, ratio): the best-scoring candidate when its score is at least
    ``margin`` below the default's (ratio = its score / the default's), else the default."""
    score = scores(samples)
    best = min(score, key=score.get)
    ratio = score[best] / max(score[default], 1e-12)
    rounds = len(samples[default])
    if best != default and ratio <= 1 / (1 + margin):
        return best, (f"{best} {1 / ratio:.2f}x faster than {default} (median of {rounds} "
                      f"interleaved rounds)"), ratio
    if best == default:
        return default, f"kept {default}: no other candidate was faster, round by round", ratio
    return default, (f"kept {default}: {best} was {1 / ratio:.2f}x as fast, under the "
                     f"{margin:.0%} margin"), ratio


def timed_choice(default: str, runs: dict, sample=None, margin: float = MARGIN):
    """(label, reason, samples) for the candidates ``runs`` (label -> callable), timed in
    rounds: after ``FIRST_ROUNDS`` an obvious winner (``OBVIOUS`` times faster: bf16 on AMX,
    one thread on an overloaded machine) is taken at once; otherwise ``ROUNDS`` in all, and a
    close call (within twice the margin, not clearly inside it) gets ``EXTRA_ROUNDS`` more.
    ``sample(runs, rounds, seed, warm)`` measures (``interleaved``)."""
    sample = sample or interleaved
    samples = sample(runs, FIRST_ROUNDS, 0, True)
    label, why, ratio = choose(default, samples, margin)
    for more, seed in ((ROUNDS - FIRST_ROUNDS, 1), (EXTRA_ROUNDS, 2)):
        if ratio <= 1 / OBVIOUS or (seed == 2 and not
                                    1 / (1 + 2 * margin) < ratio < 1 / (1 + margin / 2)):
            break
        extra = sample(runs, more, seed, False)
        samples = {k: samples[k] + extra[k] for k in samples}
        label, why, ratio = choose(default, samples, margin)
    return label, why, samples


def interleaved(runs: dict, rounds: int = ROUNDS, seed: int = 0,
                warm: bool = True) -> dict[str, list[float]]:
    """Seconds per call of each of ``runs`` (label -> callable), after one warm-up call each
    (``warm``: the first call pays for kernel selection), in ``rounds`` shuffled rounds."""
    for fn in runs.values() if warm else ():
        fn()
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        order = list(runs)
        rng.shuffle(order)
        for label in order:
            start = time.perf_counter()
            runs[label]()
            samples[label].append(time.perf_counter() - start)
    return samples


def _figures(samples: dict[str, list[float]]) -> dict[str, float]:
    return {label: round(statistics.median(t), 4) for label, t in samples.items()}


# --- what is timed --------------------------------------------------------------------------
@dataclass
class Workload:
    """One batch of what trains, on private copies (the run's weights are never touched)."""
    train_module: nn.Module  # the part that trains (the tail after a cached prefix, or all)
    inputs: torch.Tensor  # one batch as it receives it
    targets: torch.Tensor
    optimizer: str  # TrainConfig.optimizer
    bn_trains: bool  # then micro-batches are off (one pass per batch)
    images_ahead: int  # images the phase ahead trains on (whether timing pays)
    full_model: nn.Module | None = None  # the whole network, for passes without gradients
    images: torch.Tensor | None = None  # one batch of its inputs
    # whether the run was asked to stop: checked before each timed call, so a Stop (or the
    # app closing) ends the timing at once (not a pause: that would count in the timings)
    stopping: Callable[[], bool] | None = None

    def __post_init__(self):
        self._copies: dict[bool, tuple] = {}

    def _check(self) -> None:
        if self.stopping is not None and self.stopping():
            raise Cancelled("Stopped while timing the speed choices.")

    def _copy(self, channels_last: bool):
        if channels_last not in self._copies:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            module = copy.deepcopy(self.train_module).to(memory_format=fmt)
            strided_depthwise_in_fp32(module)
            params = [p for p in module.parameters() if p.requires_grad]
            kind = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}.get(self.optimizer,
                                                                             torch.optim.Adam)
            self._copies[channels_last] = (module, kind(params, lr=1e-5))
        return self._copies[channels_last]

    def step(self, channels_last: bool, bf16: bool, micro_batch: int, images: int = 0):
        """A callable that runs one optimizer step over the batch (its first ``images``) in
        these settings."""
        module, opt = self._copy(channels_last)
        x, y = _layout(self.inputs, channels_last), self.targets
        if images:
            x, y = x[:images], y[:images]
        n = len(y)
        size = micro_batch if micro_batch and not self.bn_trains else n
        parts = [slice(i, min(i + size, n)) for i in range(0, n, size)]

        def run():
            self._check()
            opt.zero_grad(set_to_none=True)
            for part in parts:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = module(x[part])
                loss = F.cross_entropy(out.float(), y[part])
                (loss * ((part.stop - part.start) / n)).backward()
            opt.step()
        return run

    def forward(self, channels_last: bool, bf16: bool, images: int = 0):
        """A callable that runs the whole network over the batch (its first ``images``)
        without gradients."""
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = copy.deepcopy(self.full_model).to(memory_format=fmt).eval()
        x = _layout(self.images[:images] if images else self.images, channels_last)

        @torch.no_grad()
        def run():
            self._check()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x)
        return run


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    if x.dim() != 4:
        return x
    return x.contiguous(memory_format=torch.channels_last if channels_last
                        else torch.contiguous_format)


def with_threads(n: int, fn):
    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(before)
    return run


@dataclass
class Free:
    """Which choices are the tuner's (the user's settings win over it)."""
    precision: bool = True  # --precision auto
    threads: bool = True  # no --threads, one process on the machine
    default_micro_batch: int = 16
    default_channels_last: bool = True
    default_threads: int = 0  # torch's own count when the run began (0: the current one)


def measure_threads(w: Workload, free: Free, report=None) -> dict[str, dict]:
    """Threads: torch's default (one per core) or half of it, timed on one micro-batch of
    the default step. Timed at every run's start, not cached: the answer depends on what
    else the machine runs at the time (on 2 shared cores under a load of 13, a 2-thread step
    ran ~10x slower than a 1-thread one, each thread waiting at every operation's barrier
    for its preempted sibling; idle, 2 threads are faster). Left as set where the user
    chose (``--threads``, OMP_NUM_THREADS) or several processes share the machine."""
    default = free.default_threads or torch.get_num_threads()
    if not free.threads or default < 2:
        return {}
    mb = free.default_micro_batch or len(w.targets)
    step = w.step(free.default_channels_last, False, mb, min(len(w.targets), mb))
    best, why, samples = timed_choice(str(default), {
        str(t): with_threads(t, step) for t in (default, default // 2)})
    (report or (lambda *a: None))("threads (s a batch)", samples)
    return {"threads": decision(int(best), why, _figures(samples))}


def measure(w: Workload, free: Free, report=None) -> dict[str, dict]:
    """Time the candidates of ``w`` in stages (layout and precision, micro-batch, precision
    without gradients) at the current thread count; returns name -> decision.
    ``report(stage, samples)`` sees each stage's raw timings (bench/autotune.py prints
    them)."""
    report = report or (lambda stage, samples: None)
    out: dict[str, dict] = {}
    cl, mb = free.default_channels_last, free.default_micro_batch
    bf16_units = cpu_bf16_units() if free.precision else ""
    # 1. layout x precision of the training step, on two micro-batches (the cost per image)
    variants = {(c, b) for c in (True, False) for b in ((False, True) if bf16_units else (False,))}
    label = {v: f"{'channels_last' if v[0] else 'contiguous'}, {'bf16' if v[1] else '32'}"
             for v in variants}
    part = min(len(w.targets), 2 * mb) if mb else 0
    best, why, samples = timed_choice(label[(cl, False)], {
        label[v]: w.step(*v, mb, part) for v in sorted(variants, reverse=True)})
    report("layout and precision of the training step (s a batch)", samples)
    cl, bf16 = next(v for v in variants if label[v] == best)
    out["channels_last"] = decision(cl, why, _figures(samples))
    if free.precision:
        out["train_precision"] = decision("bf16" if bf16 else "32", why if bf16_units else
                                          "32: this CPU has no bf16 units", _figures(samples))
    # 2. micro-batch (each candidate over the whole batch)
    n = len(w.targets)
    if not w.bn_trains and n > 8:
        default = min(mb, n) if mb else n
        sizes = sorted({s for s in (8, 16, 32) if s < n} | {n, default})
        best, why, samples = timed_choice(str(default),
                                          {str(s): w.step(cl, bf16, s) for s in sizes})
        report("micro-batch (s a batch)", samples)
        out["micro_batch"] = decision(int(best), why, _figures(samples))
    # 3. precision of the passes without gradients
    if free.precision and not bf16 and bf16_units and w.full_model is not None:
        best, why, samples = timed_choice("32", {p: w.forward(cl, p == "bf16", part)
                                                 for p in ("32", "bf16")})
        report("passes without gradients (s a batch)", samples)
        out["eval_precision"] = decision(best, why, _figures(samples))
    return out


def worth_timing(w: Workload, free: Free) -> str:
    """Why timing the candidates would not pay for itself now ("" when it would): a short
    phase, or steps so slow here (an overloaded machine) that timing would take long; then
    the defaults serve (not cached: a later run times them)."""
    step = w.step(free.default_channels_last, False, free.default_micro_batch)
    step()
    start = time.perf_counter()
    step()
    took = time.perf_counter() - start
    seconds = took * w.images_ahead / max(len(w.targets), 1)
    if seconds < MIN_SECONDS:
        return f"a short run (about {seconds:.0f} s of training): the defaults"
    cost = took * COST_STEPS
    if cost > min(MAX_SECONDS, 0.1 * seconds):
        return (f"one step takes {took:.1f} s here now, so timing the candidates would take "
                f"~{cost:.0f} s: the defaults, timed at a later run")
    return ""


# --- where the choices are kept ----------------------------------------------------------
def machine_key() -> str:
    """The CPU kind (model name and the flags that change kernels), core count and torch
    version: what a cached choice is valid for."""
    model, flags = cpu_kind()
    text = f"{model}|{' '.join(flags)}|{os.cpu_count()}|torch {torch.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def cpu_kind() -> tuple[str, list[str]]:
    """(model name, kernel-relevant flags) from /proc/cpuinfo (platform's words elsewhere)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in KERNEL_FLAGS if f in flags]


def workload_key(arch: str, image_size: int, batch: int, cut: int, trainable: list[str],
                 bn_trains: bool, optimizer: str) -> str:
    text = json.dumps([arch, image_size, batch, cut, trainable, bn_trains, optimizer])
    return f"{arch}-{image_size}px-b{batch}-k{cut}-" + \
        hashlib.sha256(text.encode()).hexdigest()[:12]


def load_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if data.get("version") == CACHE_VERSION else {"version": CACHE_VERSION}
    except (OSError, ValueError, AttributeError):
        return {"version": CACHE_VERSION}


def recall(key: str) -> dict | None:
    """The decisions this machine kind cached for workload ``key``, or None."""
    from core.paths import cache_dir

    entry = load_cache(cache_dir() / CACHE_FILE).get(machine_key(), {})
    return entry.get("workloads", {}).get(key)


def remember(key: str, decisions: dict) -> None:
    """Cache ``decisions`` for workload ``key`` on this machine kind (a read-only or full
    cache folder only means they are timed again next time)."""
    from core.paths import cache_dir, write_text_atomic

    path = cache_dir() / CACHE_FILE
    cache = load_cache(path)
    model, flags = cpu_kind()
    slot = cache.setdefault(machine_key(), {"cpu": model, "flags": flags,
                                            "torch": torch.__version__, "workloads": {}})
    slot["workloads"][key] = decisions
    try:
        write_text_atomic(path, json.dumps(cache, indent=1) + "\n")
    except OSError:
        pass


# a run's choices live in its folder's decisions.json (core.runs: the run folder's one home)
load_decisions, save_decisions = read_decisions, write_decisions

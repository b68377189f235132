"""The trial that fits a small folder's recipe to its data (core.recipe decides from it).

Both candidates, the preset's fine-tuning and the head alone on frozen ImageNet features, go
through the engine's own loop (caching, flips, weight averaging, test-time flips, the matched
head start): each trains on the same 3/4 of the training images and is scored on the same
other quarter, so the comparison is paired and the validation split stays unseen. The result
is remembered on disk (key: the files, the candidates' settings, the weights), so the next
start on the same data and settings decides at once.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from core.config import TrainConfig
from core.data.datasets import Dataset, Split, stratified_split
from core.data.streaming import take
from core.events import Callback
from core.models.head_init import weights_identity
from core.paths import cache_dir, write_text_atomic
from core.progress import Cancelled, TaskState
from core.recipe import (FINE_TUNE, HEAD_ONLY, TRIAL_HOLD_OUT, DataProfile, FitPlan,
                         TrialResult, fit_to_data, plan)
from core.recipe import candidates as trial_candidates
from core.training.averaging import WeightAveraging
from core.training.distributed import Distributed
from core.training.freezing import FreezeSchedule
from core.training.loop import FitLoop, Runtime

TRIAL_FORMAT = 1  # part of the cache key: a change of the trial's procedure re-measures
# settings that do not change what a candidate learns
_NOT_IN_KEY = ("data", "log_every", "threads", "device", "precision", "compile", "fit_data")
LABELS = {FINE_TUNE: "fine-tuning", HEAD_ONLY: "the head alone"}


@dataclass(frozen=True)
class FeatureSeed:
    """What a trial's frozen prefix computed for the training images (and their mirrors), in
    the order of the training split: the run that follows starts with it in its cache."""
    k: int  # the prefix's stages
    store: torch.Tensor  # (training images, variants, ...)
    filled: torch.Tensor  # (training images, variants): which of them the trial computed


def trial_split(data: Dataset, seed: int) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The training images as a trial's own train / held-out pair (seeded, per class), and
    the indices of each in the training split."""
    part, held = stratified_split(data.train.labels, TRIAL_HOLD_OUT, seed)
    t = data.train
    trial = Dataset(data.name, data.classes, Split(take(t.images, part), t.labels[part]),
                    Split(take(t.images, held), t.labels[held]),
                    f"{TRIAL_HOLD_OUT:.0%} of the training images", crop=data.crop)
    return trial, part, held


def feature_seed(caches, part: torch.Tensor, held: torch.Tensor) -> FeatureSeed | None:
    """The trial's train and held-out caches as one for the whole training split (what each
    computed: caches fill lazily, per image and orientation), when both hold the same
    variants (flips and test-time flips alike)."""
    if caches is None or caches.train.store is None or caches.val.store is None \
            or caches.train.variants != caches.val.variants:
        return None
    a, b = caches.train.store, caches.val.store
    store = torch.empty((len(part) + len(held), *a.shape[1:]),
                        dtype=torch.promote_types(a.dtype, b.dtype), device=a.device)
    store[part.to(a.device)] = a.to(store.dtype)
    store[held.to(a.device)] = b.to(a.device, store.dtype)
    filled = torch.empty(store.shape[:2], dtype=torch.bool)
    filled[part], filled[held] = caches.train.filled, caches.val.filled
    return FeatureSeed(caches.k, store, filled)


def cache_key(configs: dict[str, TrainConfig], profile: DataProfile) -> str | None:
    if not profile.identity:
        return None
    parts = [TRIAL_FORMAT, TRIAL_HOLD_OUT, profile.identity, torch.__version__,
             weights_identity(next(iter(configs.values())).weights)]
    for name, cfg in sorted(configs.items()):
        parts.append((name, sorted((k, v) for k, v in asdict(cfg).items()
                                   if k not in _NOT_IN_KEY)))
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _cache_file(key: str) -> Path:
    return cache_dir() / "fitting" / f"trial-{key}.json"


def load_cached(key: str | None) -> TrialResult | None:
    if key is None:
        return None
    try:
        d = json.loads(_cache_file(key).read_text(encoding="utf-8"))
        return replace(TrialResult(**d), seconds=0.0, cached=True)
    except (OSError, ValueError, TypeError):
        return None  # none yet, or unreadable: measured again


def _save(key: str | None, result: TrialResult) -> None:
    if key is None:
        return
    try:
        write_text_atomic(_cache_file(key), json.dumps(asdict(result)))
    except Exception:  # noqa: BLE001 - a read-only cache only costs the trial next time
        pass


class _Progress(Callback):
    """The trial's batches as one progress bar of the caller's TaskState."""

    def __init__(self, state: TaskState, stage: str):
        self.state, self.stage = state, stage

    def on_batch_end(self, e) -> None:
        self.state.report(self.stage, (e.epoch - 1) * e.batches + e.batch, e.epochs * e.batches)


def score(cfg: TrainConfig, data: Dataset, runtime, state: TaskState,
          stage: str) -> tuple[int, float, FitLoop]:
    """Train ``cfg`` on ``data.train`` as a run would (no run folder): how many ``data.val``
    images its final weights classify right, their mean loss, and the loop (its feature
    caches)."""
    from core.training.trainer import build_network  # it builds every run's network

    cfg = replace(cfg, log_every=0)
    # the run after the trial starts from the same random state with or without one
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_network(cfg, data, state, log=lambda _: None)
        net.model.to(runtime.device)
        alone = Runtime(runtime.device, runtime.precision, Distributed())  # rank 0 only
        hooks = [FreezeSchedule(cfg), *([WeightAveraging(cfg.ema)] if cfg.ema else [])]
        loop = FitLoop(cfg, net, data, [*hooks, _Progress(state, stage)], state, alone)
        end = loop.fit()
    if end.status == "stopped":
        raise Cancelled("Stopped by the user.")
    if end.status != "finished" or not end.history:
        return 0, math.inf, loop  # diverged: every held-out image counts as wrong
    last = end.history[-1]
    return round(last["val_acc"] * len(data.val.labels) / 100), last["val_loss"], loop


def run_trial(cfg: TrainConfig, fitted: FitPlan, profile: DataProfile,
              data_for: Callable[[int], Dataset], runtime, state: TaskState,
              log=print) -> tuple[TrialResult, dict[str, FeatureSeed]]:
    """Measure both candidates of ``fitted`` on the training images (``data_for(size)``: the
    user's data decoded at that size), or recall the measurement of an earlier start; with
    the frozen features each candidate computed for the whole training split (none when
    recalled), for the run that follows."""
    configs = trial_candidates(cfg, fitted)
    key = cache_key(configs, profile)
    cached = load_cached(key)
    if cached is not None:
        return cached, {}
    t0, correct, loss, seeds, sizes = time.perf_counter(), {}, {}, {}, (0, 0)
    for i, (name, candidate) in enumerate(configs.items()):
        data, part, held = trial_split(data_for(candidate.image_size), cfg.seed)
        sizes = (len(data.val.labels), len(data.train.labels))
        if not sizes[0]:  # one image a class: nothing to score on, the preset stays
            return TrialResult(0, sizes[1], 0, 0), {}
        stage = (f"Trying {LABELS[name]} on {sizes[1]} of your training images "
                 f"({i + 1}/{len(configs)})")
        log(f"{stage}: {candidate.image_size} px, {candidate.epochs} epochs, freeze "
            f"'{candidate.freeze}' for {candidate.freeze_epochs}")
        correct[name], loss[name], loop = score(candidate, data, runtime, state, stage)
        seeds[name] = feature_seed(loop.caches, part, held)
        del loop
        state.check()
    result = TrialResult(sizes[0], sizes[1], correct[HEAD_ONLY], correct[FINE_TUNE],
                         time.perf_counter() - t0, head_only_loss=loss[HEAD_ONLY],
                         fine_tune_loss=loss[FINE_TUNE])
    _save(key, result)
    return result, {k: v for k, v in seeds.items() if v is not None}


def recall(cfg: TrainConfig, profile: DataProfile, keep=frozenset()) -> FitPlan:
    """``plan`` with what an earlier start on the same data and settings measured, when one
    did (cheap: no decoding, no training): what the Train form can show before Start."""
    fitted_cfg = replace(cfg)
    fitted = fit_to_data(fitted_cfg, profile, keep=keep)
    if not fitted.pending:
        return fitted
    measured = load_cached(cache_key(trial_candidates(fitted_cfg, fitted), profile))
    return plan(cfg, profile, measured, keep) if measured else fitted

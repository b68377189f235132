"""How the check's network runs on this machine: float32 or bf16, timed, not assumed.

Computing the features is most of a check's time (10,000 CIFAR-10 thumbnails at 128 px: ~220
of 248 s in float32 on a 2-core Sapphire Rapids). Where the CPU has bf16 units, bf16 autocast
may be faster (there 1.69x with the mirror image's pass, 1.27x for the image alone: 0.0103 ->
0.0081 s an image; features within cosine 0.999 of float32's) or
slower (an AVX2-only CPU ran bf16 3x slower: ../shared/notes), so the two are timed on the
first real batch, in interleaved rounds by the training tuner's rule
(core.training.autotune.timed_choice: medians, a 10% margin before leaving float32), and the
choice is cached per CPU kind and torch version in the same autotune.json, so a second check
on this machine (and every check after) runs as the first did. A check with few images to
compute keeps float32: timing would cost more than it saves. The figures are seconds an image
(the median of the rounds).
"""
from __future__ import annotations

import statistics

import torch

from core.training import autotune as at
from core.training.device import cpu_bf16_units

MIN_IMAGES = 1000  # images to compute below which nothing is timed


def workload_key(arch: str, size: int, batch: int, views: int) -> str:
    """The network, input side, batch and views an image (1, or 2 with its mirror): what
    the speed depends on (a run's fine-tuned weights do not change it)."""
    return f"check-{arch}-{size}px-b{batch}x{views}"


def choose_precision(forward, sample: torch.Tensor, key: str, todo: int) -> dict:
    """A decision record (core.training.autotune.decision) for the features' passes:
    ``choice`` '32' or 'bf16'. ``forward(x, bf16)`` runs the network on ``sample`` (one
    real batch)."""
    units = cpu_bf16_units()
    if not units:
        return at.decision("32", "this CPU has no bf16 units")
    cached = at.recall(key)
    if cached and "precision" in cached:
        return dict(cached["precision"], source="cached for this machine")
    if todo < MIN_IMAGES:
        return at.decision("32", f"only {todo} images to compute: not worth timing")
    label, why, samples = at.timed_choice("32", {
        "32": lambda: forward(sample, False), "bf16": lambda: forward(sample, True)})
    figures = {k: round(statistics.median(v) / len(sample), 5) for k, v in samples.items()}
    record = at.decision(label, f"{why} ({units})", figures)
    at.remember(key, {"precision": record})
    return dict(record, source="timed now on this CPU")

"""What a larger network costs at each image size, under fast-cpu's recipe, relative to
EfficientNet-Lite0 at 176 px: the sizes at which Lite1 and Lite2 take the same time.

    .venv/bin/python bench/capacity.py [--threads 2] [--rounds 5] [--bf16]
        [--micro-batch 16] [--candidate efficientnet_lite1:160 ...]

For each network and size: the frozen prefix's forward rate (what the first epoch computes
once per image and mirror image), the training step of the layers after it (64-image batches
in 16-image micro-batches, AdamW, as FitLoop runs them) and their forward rate (validation).
The candidates are timed in turns, round after round, and the medians kept, so a machine whose
speed drifts (a shared one) slows all alike; only the ratios mean something. The predicted
time of a whole fast-cpu run (45,000 train / 5,000 val images, 3 epochs, flips, test-time
flips) follows from the three rates. As a run computes them: the prefix with its BatchNorm
folded (core.models.folding); ``--bf16`` and ``--micro-batch`` set what the autotuner chose
on this machine (its log says; bf16 keeps the strided depthwise convolutions in float32).
"""
from __future__ import annotations

import argparse
import statistics
import time

import common  # noqa: F401 - sets sys.path

DEFAULT = ["efficientnet_lite0:176", "efficientnet_lite1:160", "efficientnet_lite2:144",
           "efficientnet_lite1:176"]
TRAIN, VAL, EPOCHS = 45_000, 5_000, 3


class Candidate:
    def __init__(self, torch, text: str, bf16: bool = False, micro_batch: int = 16):
        from core.config import PRESETS, TrainConfig, apply_preset
        from core.models import build_model, head_path
        from core.models.layers import LayerTree
        from core.models.folding import FoldedStages
        from core.models.staging import frozen_prefix, run, stages
        from core.training.device import strided_depthwise_in_fp32
        from core.training.optim import build_optimizer

        self.torch, self.run = torch, run
        self.name, size = text.split(":")
        self.size = int(size)
        model, _, _ = build_model(self.name, "imagenet", 10)
        self.model = model.to(memory_format=torch.channels_last)
        tree = LayerTree(self.model)
        tree.apply_spec(PRESETS["fast-cpu"]["freeze"], head_path(self.model), self.name)
        st = stages(self.name, self.model)
        k = frozen_prefix(tree, st)
        self.prefix, self.tail = FoldedStages(st[:k]), st[k:]
        self.bf16, self.micro = bf16, micro_batch
        strided_depthwise_in_fp32(self.model, bf16)
        self.model.eval()  # BatchNorm keeps its statistics, as fast-cpu's "eval" policy does
        cfg = apply_preset(TrainConfig(model=self.name), "fast-cpu")
        self.opt = build_optimizer(cfg, self.model, None, head_path(self.model))
        self.x = torch.randn(64, 3, self.size, self.size).contiguous(
            memory_format=torch.channels_last)
        with torch.no_grad():
            self.feats = self.prefix(self.x[:16]).repeat(4, 1, 1, 1).contiguous(
                memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (64,))
        self.times = {"prefix": [], "step": [], "tail": []}

    def _autocast(self):
        return self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.bf16)

    def _prefix(self):
        with self.torch.no_grad(), self._autocast():
            self.prefix(self.x[:32])

    def _step(self):
        self.opt.zero_grad(set_to_none=True)
        for i in range(0, 64, self.micro):
            with self._autocast():
                out = self.run(self.tail, self.feats[i:i + self.micro])
            loss = self.torch.nn.functional.cross_entropy(out.float(), self.y[i:i + self.micro])
            (loss * (len(out) / 64)).backward()
        self.opt.step()

    def _tail(self):
        with self.torch.no_grad(), self._autocast():
            self.run(self.tail, self.feats)

    def measure(self) -> None:
        for key, fn, n in (("prefix", self._prefix, 32), ("step", self._step, 64),
                           ("tail", self._tail, 64)):
            if not self.times[key]:
                fn()  # warm up once
            t = time.perf_counter()
            fn()
            self.times[key].append(n / (time.perf_counter() - t))

    def rates(self) -> dict:
        return {k: statistics.median(v) for k, v in self.times.items()}

    def run_seconds(self) -> float:
        r = self.rates()
        first = 2 * (TRAIN + VAL) / r["prefix"]  # each image and its mirror, once
        return first + EPOCHS * (TRAIN / r["step"] + 2 * VAL / r["tail"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--candidate", action="append", help="NETWORK:SIZE")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (as the tuner chose)")
    ap.add_argument("--micro-batch", type=int, default=16)
    args = ap.parse_args()
    from core.allocator import ensure_tuned

    ensure_tuned()
    import torch

    torch.set_num_threads(args.threads)
    cands = [Candidate(torch, text, args.bf16, args.micro_batch)
             for text in args.candidate or DEFAULT]
    for i in range(args.rounds):
        for c in cands:
            c.measure()
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(
            f"{c.name[-5:]}@{c.size} {c.run_seconds() / 60:.0f} min" for c in cands), flush=True)
    base = cands[0].run_seconds()
    print(f"{'network':20s}{'px':>5s}{'prefix img/s':>14s}{'step img/s':>12s}"
          f"{'tail img/s':>12s}{'run (model)':>13s}{'vs ' + cands[0].name[-5:]:>10s}")
    for c in cands:
        r = c.rates()
        print(f"{c.name:20s}{c.size:5d}{r['prefix']:14.1f}{r['step']:12.1f}{r['tail']:12.1f}"
              f"{c.run_seconds() / 60:11.1f} m{c.run_seconds() / base:10.2f}x")


if __name__ == "__main__":
    main()

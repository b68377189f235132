"""Which way of training is fastest on this CPU: the autotuner's candidates and choices.

    .venv/bin/python bench/autotune.py [--repeat 3] [--workload fast-cpu|seed|all]

Prints the CPU kind (model name and the flags that change kernels) and its peaks (float32
and bf16 matrix products, memory copy) and fast-cpu's cached prefix plain and with its
BatchNorm folded (float32 and bf16), then, per workload, every stage's candidates (seconds
a batch: median, spread, ratio to the default) and the choice, exactly as a training run
would time them (core.training.autotune.measure; nothing is read from or written to the
cache). ``--repeat N`` decides N times to show how stable the choice is on a busy machine.

Workloads: ``fast-cpu`` = the preset's training step after the cached prefix (its network,
ImageNet weights, image size, batch and frozen layers as core.config.PRESETS["fast-cpu"]
says, BatchNorm statistics fixed); ``seed`` = the lesson's unfrozen phase
(MobileNetV2, 224 px, batch 64, everything trains; random weights, same shapes: slow).
"""
from __future__ import annotations

import argparse
import statistics
import time

import common  # noqa: F401 - sets sys.path


def peaks(torch) -> None:
    def best(fn, reps=8):
        fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    x = torch.randn(32 * 1024 * 1024)
    y = torch.empty_like(x)
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        fp32 = 2 * n**3 / best(lambda: a @ b) / 1e9
        ab, bb = a.bfloat16(), b.bfloat16()
        bf16 = 2 * n**3 / best(lambda: ab @ bb) / 1e9
        copy = 2 * x.numel() * 4 / best(lambda: y.copy_(x), 4) / 1e9
        print(f"  {threads} thread(s): float32 matmul {fp32:6.0f} GFLOP/s, bf16 matmul "
              f"{bf16:6.0f} GFLOP/s, memory copy {copy:5.1f} GB/s")
    torch.set_num_threads(max(1, threads))


def preset_network():
    """fast-cpu's network as the preset builds it (core.config.PRESETS, the preset's one
    home), with a 10-class head and its freeze applied: (preset, model, stages, the number
    of frozen leading stages the cache computes)."""
    from core.config import PRESETS
    from core.models import build_model, head_path, replace_head
    from core.models.layers import LayerTree
    from core.models.staging import frozen_prefix, stages

    p = PRESETS["fast-cpu"]
    model, _, _ = build_model(p["model"], "imagenet", None)
    replace_head(model, 10)
    tree = LayerTree(model)
    tree.apply_spec(p["freeze"], head_path(model), p["model"])
    st = stages(p["model"], model)
    return p, model, st, frozen_prefix(tree, st)


def prefix_table(torch, reps: int = 5) -> None:
    """fast-cpu's cached prefix (the first epoch's cache fill): plain stages against their
    BatchNorm folded into the convolutions (core.models.folding), float32 and bf16, timed in
    interleaved rounds (median seconds for one batch)."""
    from core.models.folding import fold_stages
    from core.models.staging import run

    p, model, st, k = preset_network()
    arch, size, batch = p["model"], p["image_size"], p["batch_size"]
    model.eval()
    prefix = st[:k]
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    folded, n = fold_stages(prefix, x[:2])
    runs = {(name, bf16): (stage_list, bf16) for name, stage_list in
            (("plain", prefix), (f"folded ({n} BatchNorm)", folded)) for bf16 in (False, True)}
    times: dict = {key: [] for key in runs}
    with torch.no_grad():
        for _ in range(reps + 1):  # (the first round warms up)
            for key, (stage_list, bf16) in runs.items():
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    run(stage_list, x)
                times[key].append(time.perf_counter() - start)
    print(f"  the cached prefix (cache fill), {arch}, {batch} images at {size} px, "
          "channels_last:")
    for (name, bf16), t in times.items():
        med = statistics.median(t[1:])
        print(f"    {name:22s} {'bf16' if bf16 else 'float32':7s} median {med:6.3f} s "
              f"= {batch / med:6.1f} img/s")


def fast_cpu(torch):
    from core.models.layers import apply_bn_policy
    from core.models.staging import StageStack, run
    from core.training.autotune import Workload

    p, model, st, k = preset_network()
    size, batch = p["image_size"], p["batch_size"]
    model.train()
    apply_bn_policy(model, "eval")
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = run(st[:k], images.contiguous(memory_format=torch.channels_last))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(1))
    return Workload(StageStack(st[k:]), feats.float(), y, p["optimizer"], False, 135_000,
                    model, images)


def seed(torch):
    from core.models import build_model
    from core.models.layers import apply_bn_policy
    from core.training.autotune import Workload

    model, _, _ = build_model("mobilenet_v2", "none", 10)
    model.train()
    apply_bn_policy(model, "eval")
    images = torch.randn(64, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))
    return Workload(model, images, y, "adam", False, 150_000, model, images)


def report(stage: str, samples: dict[str, list[float]]) -> None:
    first = next(iter(samples))
    print(f"    {stage}:")
    for label, times in samples.items():
        ratio = statistics.median(t / b for t, b in zip(times, samples[first]))
        print(f"      {label:24s} median {statistics.median(times):7.3f} s  (min "
              f"{min(times):6.3f}, max {max(times):6.3f})  {1 / ratio:5.2f}x vs {first}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workload", choices=("fast-cpu", "seed", "all"), default="fast-cpu")
    args = ap.parse_args()
    from core.allocator import ensure_tuned

    ensure_tuned()
    import torch

    from core.training.autotune import Free, cpu_kind, measure, measure_threads

    model, flags = cpu_kind()
    print(f"CPU: {model}; flags: {' '.join(flags)}; {torch.get_num_threads()} threads; "
          f"torch {torch.__version__}")
    peaks(torch)
    if args.workload in ("fast-cpu", "all"):
        prefix_table(torch)
    threads = torch.get_num_threads()
    names = ("fast-cpu", "seed") if args.workload == "all" else (args.workload,)
    chosen: dict[str, list[str]] = {}
    for name in names:
        work = (fast_cpu if name == "fast-cpu" else seed)(torch)
        for attempt in range(args.repeat):
            print(f"\n{name}, decision {attempt + 1} of {args.repeat}:", flush=True)
            start = time.perf_counter()
            torch.set_num_threads(threads)
            decisions = measure_threads(work, Free(), report)
            if decisions:
                torch.set_num_threads(decisions["threads"]["choice"])
            decisions.update(measure(work, Free(), report))
            took = time.perf_counter() - start
            summary = ", ".join(f"{k} {d['choice']}" for k, d in decisions.items())
            print(f"  chose ({took:.0f} s of timing): {summary}")
            for k, d in decisions.items():
                print(f"    {k}: {d['reason']}")
            chosen.setdefault(name, []).append(summary)
    print("\nstability:")
    for name, runs in chosen.items():
        counts = {s: runs.count(s) for s in runs}
        for summary, count in counts.items():
            print(f"  {name}: {count} of {len(runs)}: {summary}")


if __name__ == "__main__":
    main()

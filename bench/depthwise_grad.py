"""Why fast-cpu freezes the 5 x 5 depthwise convolutions: their weight gradient on a CPU.

    .venv/bin/python bench/depthwise_grad.py [--threads 2]

For depthwise convolutions of the shapes that train in fast-cpu's EfficientNet-Lite0 at
176 px (3 x 3 and 5 x 5 kernels, 16-image micro-batches, channels_last), times the forward
pass, the input gradient and the weight gradient; then one whole training step of the layers
after the cached prefix with those filters trainable and frozen. Ratios only mean something
within one run.
"""
from __future__ import annotations

import argparse
import time

import common  # noqa: F401 - sets sys.path


def seconds(fn, reps: int = 20) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def layer_table(torch) -> None:
    print(f"{'channels':>8} {'size':>5} {'kernel':>6} {'stride':>6} {'forward':>9} "
          f"{'input grad':>11} {'weight grad':>12}")
    for c, hw, k, s in [(480, 11, 3, 1), (1152, 6, 3, 1), (480, 11, 5, 1), (672, 11, 5, 1),
                        (1152, 6, 5, 1)]:
        conv = torch.nn.Conv2d(c, c, k, s, k // 2, groups=c, bias=False).to(
            memory_format=torch.channels_last)
        x = torch.randn(16, c, hw, hw).contiguous(memory_format=torch.channels_last)
        out = conv(x)
        g = torch.randn_like(out)
        grad = torch.nn.grad
        fwd = seconds(lambda: conv(x))
        gin = seconds(lambda: grad.conv2d_input(x.shape, conv.weight, g, s, k // 2, groups=c))
        gw = seconds(lambda: grad.conv2d_weight(x, conv.weight.shape, g, s, k // 2, groups=c))
        print(f"{c:8d} {hw:5d} {k:4d}x{k} {s:6d} {fwd * 1e3:7.2f}ms {gin * 1e3:9.2f}ms "
              f"{gw * 1e3:10.2f}ms")


def step_rate(torch, spec: str) -> float:
    from core.models import build_model, head_path
    from core.models.layers import LayerTree
    from core.models.staging import frozen_prefix, run, stages

    model, _, _ = build_model("efficientnet_lite0", "none", 10)
    model = model.to(memory_format=torch.channels_last)
    tree = LayerTree(model)
    tree.apply_spec(spec, head_path(model), "efficientnet_lite0")
    st = stages("efficientnet_lite0", model)
    k = frozen_prefix(tree, st)
    model.eval()  # BatchNorm keeps its statistics, as fast-cpu's "eval" policy does
    x = torch.randn(64, 3, 176, 176).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        feats = run(st[:k], x).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)

    def step():
        opt.zero_grad()
        for i in range(0, 64, 16):
            loss = torch.nn.functional.cross_entropy(run(st[k:], feats[i:i + 16]), y[i:i + 16])
            loss.backward()
        opt.step()

    return 64 / seconds(step, reps=6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from core.allocator import ensure_tuned

    ensure_tuned()
    import torch

    torch.set_num_threads(args.threads)
    layer_table(torch)
    print("\ntraining step after the cached prefix (176 px, batch 64 in micro-batches of 16;"
          " the plain freeze is timed first and last, as a check on drift):")
    for spec in ("early", "early,depthwise:5", "early,depthwise", "early"):
        print(f"  freeze {spec:20s} {step_rate(torch, spec):6.1f} img/s", flush=True)


if __name__ == "__main__":
    main()

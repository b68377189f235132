"""Training-step images/s on the GPU in float32 and in bf16 autocast, same model, same batch.

    python bench/gpu_throughput.py [--model efficientnet_lite0 --image-size 224 --batch 128]

Random weights and random inputs (speed does not depend on them), channels_last, AdamW;
10 warm-up steps, then 30 timed steps between CUDA synchronisations.
"""
from __future__ import annotations

import argparse
import time

import common  # noqa: F401 - sets sys.path
import torch


def images_per_s(model, precision: str, batch: int, size: int, steps=30, warmup=10) -> float:
    from core.training.device import Precision

    dev = torch.device("cuda")
    p = Precision(precision, dev)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with p.autocast():
            loss = loss_fn(model(x).float(), y)
        p.backward(loss)
        p.step(opt)
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    from core.models import build_model

    if not torch.cuda.is_available():
        raise SystemExit("skipped: no CUDA GPU")
    rates = {}
    for precision in ("32", "bf16"):
        model, _, _ = build_model(args.model, "none", 10)
        model = model.cuda().to(memory_format=torch.channels_last).train()
        rates[precision] = images_per_s(model, precision, args.batch, args.image_size)
    print(f"{args.model} {args.image_size} px batch {args.batch} on "
          f"{torch.cuda.get_device_name()}: fp32 {rates['32']:.0f} img/s, bf16 "
          f"{rates['bf16']:.0f} img/s ({rates['bf16'] / rates['32']:.2f}x)")


if __name__ == "__main__":
    main()

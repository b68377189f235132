"""Does averaging a trained run's predictions over several input sizes help? Scores a run's
model.pt on its validation split and on a labelled folder at each size, plain and with its
mirror image, and every combination of sizes (each with both orientations, logits averaged as
core.models.flip_average averages them).

    .venv/bin/python bench/test_time_sizes.py RUN_FOLDER HELD_OUT_FOLDER [--sizes 160,192]

The sizes change only the one forward path's input resize (core.inference.forward.InputResize):
the same decoded squares, normalisation and network as prediction. float32, as prediction
runs; at ~45 img/s (160 px, 2 threads) two sizes over 10,000 images take ~18 min.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import common  # noqa: F401 - sets sys.path


def logits_at(lm, split, size: int, mirrored: bool, batch: int = 100):
    import torch

    from core.preprocess import normalise

    lm.net.resize.size, lm.net.mirror = size, False
    out = []
    with torch.no_grad():
        for start in range(0, len(split.labels), batch):
            x = torch.from_numpy(normalise(
                split.images[start:start + batch].permute(0, 2, 3, 1).numpy(), lm.preprocessing))
            out.append(lm.net(x.flip(-1) if mirrored else x)[0].float())
    return torch.cat(out)


def accuracy(logits, labels) -> float:
    return 100.0 * (logits.argmax(1) == labels).double().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("held_out", help="a labelled folder with the run's classes")
    ap.add_argument("--sizes", default="160,192")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="the first N images of each "
                    "slice only (a quick try of the script)")
    args = ap.parse_args()
    import torch

    from core.inference.evaluate import folder_split, run_validation_split
    from core.inference.predict import load_model_file
    from core.progress import TaskState

    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    lm, state = load_model_file(args.run / "model.pt"), TaskState()
    print(f"trained at {lm.preprocessing.image_size} px; sizes {sizes}", flush=True)
    slices = {"validation": run_validation_split(args.run, lm, state)[0],
              "held-out": folder_split(args.held_out, lm, state)[0]}
    for name, split in slices.items():
        if args.limit:
            split = type(split)(split.images[:args.limit], split.labels[:args.limit])
        per_size = {}
        for size in sizes:
            plain, mirrored = (logits_at(lm, split, size, m) for m in (False, True))
            per_size[size] = plain + mirrored
            print(f"{name:11s} {size:4d} px  plain {accuracy(plain, split.labels):6.2f}%  "
                  f"with its mirror image {accuracy(per_size[size], split.labels):6.2f}%",
                  flush=True)
        for r in range(2, len(sizes) + 1):
            for combo in itertools.combinations(sizes, r):
                both = sum(per_size[s] for s in combo)
                print(f"{name:11s} {'+'.join(map(str, combo)):>7s} px, both orientations "
                      f"{accuracy(both, split.labels):6.2f}%", flush=True)


if __name__ == "__main__":
    main()

"""A training run for the multi-process tests, started by torchrun (or plainly, as the
single-process reference). It drives the real engine; the only additions are test hooks:

  --toggle-at EPOCH:BATCH   queue a live unfreeze of --toggle-path after that batch, on
                            every rank (a live change must reach all ranks at the same batch)
  --kill-at EPOCH:BATCH     SIGKILL rank --kill-rank after that batch, in the first attempt
                            only (torchrun's restart then has to resume the run)
  --params FILE             each rank saves its final parameters to FILE.rank<N>
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import TrainConfig  # noqa: E402
from core.training.callbacks import TrainingCallback  # noqa: E402
from core.training.trainer import Trainer  # noqa: E402


def at(text: str | None):
    return tuple(int(v) for v in text.split(":")) if text else None


class TestHooks(TrainingCallback):
    def __init__(self, args, trainer_box):
        self.args, self.box = args, trainer_box

    def on_train_batch_end(self, loop, epoch, batch):
        args, dist = self.args, loop.rt.dist
        if at(args.toggle_at) == (epoch + 1, batch):
            trainer = self.box[0]
            loop.state.queue(lambda: trainer.set_freeze(path=args.toggle_path, trainable=True))
        if (at(args.kill_at) == (epoch + 1, batch) and dist.rank == args.kill_rank
                and dist.restart_count == 0):
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="TrainConfig as JSON")
    p.add_argument("--out", help="the run folder (default: the engine names one)")
    p.add_argument("--params")
    p.add_argument("--toggle-at")
    p.add_argument("--toggle-path", default="features.18")
    p.add_argument("--kill-at")
    p.add_argument("--kill-rank", type=int, default=1)
    p.add_argument("--skip-from", type=int, help="training images from which --skip-easy "
                   "skips (the tests' folders are tiny)")
    args = p.parse_args()
    if args.skip_from is not None:
        from core.training import sampling

        sampling.MIN_IMAGES = args.skip_from
    cfg = TrainConfig.from_dict(json.loads(args.config))
    box = []
    observers = [TestHooks(args, box)]
    if int(os.environ.get("RANK", 0)) == 0:
        from core.frontends.console import ConsoleReporter

        observers.append(ConsoleReporter())  # as the CLI does: rank 0 alone reports
    trainer = Trainer(cfg, observers, run_dir=args.out)
    box.append(trainer)
    loop = trainer.prepare()
    result = loop.fit()
    dist = trainer.runtime.dist
    if args.params:
        import torch

        state = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
        torch.save({"state": state, "history": result.history, "status": result.status},
                   f"{args.params}.rank{dist.rank}")
    dist.close()
    return 0 if result.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
